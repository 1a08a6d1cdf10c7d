import { randomUUID } from 'node:crypto';
import { FormatError, decodeSteps, encodeFrameHeader, encodeHeader, encodePayload, encodeTrailer } from './file-format';
import { openCacheFile, parseFile } from './file-reader';
import { writeAllSync, writeFileAtomic } from './atomic-file';
import { baseIdOf, journalSteps, readBaseMetaSync } from './base-meta';
import type { JournalScan } from './journal';
import type { ProgressReporter } from '../progress';

/** What a compaction works on. @internal */
export interface CompactionJob {
  readonly name: string;
  readonly path: string;
  readonly journalPath: string;
  readonly frameEntries: number;
  readonly fileMode: number;
  /** Yield to the event loop after this much synchronous work, in ms. */
  readonly sliceMs: number;
}

/**
 * What a compaction did. `baseId` names the base the journal now belongs to, or would: the
 * caller removes the journal (the caller holds the lock, so nothing was appended meanwhile).
 * `damaged` names the file that could not be read and why; nothing was written then.
 * @internal
 */
export type CompactionOutcome =
  | { readonly kind: 'nothing' }
  | { readonly kind: 'drop-journal'; readonly baseId: string }
  | { readonly kind: 'damaged'; readonly file: 'base' | 'journal'; readonly message: string };

// Compaction decodes and re-encodes each frame it reads: smaller reads keep each stretch of
// synchronous work between two awaits short (a frame or two, not a megabyte's worth).
const COMPACTION_CHUNK_BYTES = 128 * 1024;

// Marks a key the journal deleted, in the map of the journal's net effect.
const DELETED: unique symbol = Symbol('deleted');

/**
 * Rewrites base + journal as a new base, from what is on disk (so the records of every process
 * are kept). A crash at any step leaves the old base with its journal, or the new base (whose
 * id the old journal does not carry). Must run under the cache's lock. @internal
 */
export async function compactFiles(
  job: CompactionJob,
  progressFor: (total: number) => ProgressReporter | undefined = () => undefined,
): Promise<CompactionOutcome> {
  const { name, path, journalPath } = job;
  const base = readBaseMetaSync(path);
  if (base === undefined) return { kind: 'nothing' };
  const baseId = baseIdOf(base.meta);
  // The journal's net effect, key by key (DELETED for a delete): small next to the base.
  const latest = new Map<unknown, unknown>();
  let generation = base.meta.generation;
  let records = 0;
  let journalEntries = 0;
  const journal = await openCacheFile(name, journalPath);
  if (journal === undefined) return { kind: 'nothing' };
  let scan: JournalScan | undefined;
  try {
    scan = await parseFile(name, journalPath, journal, journalSteps(journal.size, baseId, (record) => {
      records++;
      journalEntries += record.sets.length / 2 + record.deletes.length;
      generation = record.generation ?? generation;
      for (let i = 0; i < record.sets.length; i += 2) {
        latest.delete(record.sets[i]); // re-set: its place is its last write
        latest.set(record.sets[i], record.sets[i + 1]);
      }
      for (const key of record.deletes) {
        latest.delete(key);
        latest.set(key, DELETED);
      }
    }), 0, COMPACTION_CHUNK_BYTES);
  } catch (err) {
    if (err instanceof FormatError) return { kind: 'damaged', file: 'journal', message: err.message };
    throw err;
  } finally {
    await journal.handle.close().catch(() => undefined);
  }
  // Nothing whole to fold in (a stale journal, or only a torn record nobody was told was saved).
  if (scan === undefined || records === 0) return { kind: 'drop-journal', baseId };

  // The new base streams the old one frame by frame, leaving out the keys the journal changed,
  // then the journal's values: no map of the whole cache is built.
  const newBaseId = randomUUID();
  let frames = 0;
  let pairs = 0;
  let sliceStart = performance.now();
  const per = job.frameEntries;
  const lowerBound = Math.max(0, base.meta.entries - latest.size);
  // Counted by what is read: the base's entries, then the journal's (known exactly up front).
  const progress = progressFor(base.meta.entries + journalEntries);
  let read = 0;
  try {
    await writeFileAtomic(path, async (opened) => {
      const handle = await opened;
      const put = (bufs: Buffer[]) => writeAllSync(handle.fd, bufs);
      const frame = (batch: unknown[]) => {
        const payload = encodePayload(batch);
        put([encodeFrameHeader(payload), payload]);
        frames++;
        pairs += batch.length / 2;
      };
      put([encodeHeader({ name, savedAt: Date.now(), entries: lowerBound, generation, baseId: newBaseId })]);
      const file = await openCacheFile(name, path);
      if (file === undefined) throw new FormatError('the file vanished while it was compacted');
      try {
        await parseFile(name, path, file, decodeSteps(file.size, (batch) => {
          progress?.update((read += batch.length / 2));
          const kept: unknown[] = [];
          for (let i = 0; i < batch.length; i += 2) if (!latest.has(batch[i])) kept.push(batch[i], batch[i + 1]);
          if (kept.length > 0) frame(kept);
        }), 0, COMPACTION_CHUNK_BYTES);
      } finally {
        await file.handle.close().catch(() => undefined);
      }
      let batch: unknown[] = [];
      for (const [key, value] of latest) {
        if (value === DELETED) continue;
        batch.push(key, value);
        if (batch.length === per * 2) {
          frame(batch);
          batch = [];
          if (performance.now() - sliceStart > job.sliceMs) {
            await new Promise<void>((resolve) => setImmediate(resolve));
            sliceStart = performance.now();
          }
        }
      }
      if (batch.length > 0) frame(batch);
      put([encodeTrailer(frames, pairs)]);
      progress?.update(read + journalEntries);
      progress?.finish();
    }, job.fileMode);
  } catch (err) {
    if (err instanceof FormatError) return { kind: 'damaged', file: 'base', message: err.message };
    throw err;
  }
  return { kind: 'drop-journal', baseId: newBaseId };
}
