import { randomUUID } from 'node:crypto';
import { FormatError, decodeSteps, encodeFrameHeader, encodeHeader, encodePayload, encodeTrailer } from './file-format';
import { openCacheFile, parseFile } from './file-reader';
import { writeAllSync, writeTempFile } from './atomic-file';
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
  /** The base to compact, as the lock's holder saw it: nothing is written once another replaced it. */
  readonly baseId: string;
  /**
   * Where the journal ended when the lock was let go. Only the records before it are read here;
   * those appended after are carried into the new base's journal by the caller, under the lock.
   */
  readonly journalEnd: number;
}

/**
 * What a compaction did. `written`: the new base is in `temp` (fsynced, not renamed), holding
 * the old base and the journal's records up to `journalEnd` (the end of the last whole one); the
 * caller renames it in and carries the records after `journalEnd`, under the lock. `nothing`:
 * nothing to fold in (no whole record, or the base was replaced). `damaged` names the file that
 * could not be read and why; nothing was written then.
 * @internal
 */
export type CompactionOutcome =
  | { readonly kind: 'nothing' }
  /** The journal held no whole record before `journalEnd` (only a torn one, nobody was told was saved). */
  | { readonly kind: 'no-record' }
  | { readonly kind: 'written'; readonly temp: string; readonly baseId: string; readonly journalEnd: number }
  | { readonly kind: 'damaged'; readonly file: 'base' | 'journal'; readonly message: string };

// Compaction decodes and re-encodes each frame it reads: smaller reads keep each stretch of
// synchronous work between two awaits short (a frame or two, not a megabyte's worth).
const COMPACTION_CHUNK_BYTES = 128 * 1024;

// Marks a key the journal deleted, in the map of the journal's net effect.
const DELETED: unique symbol = Symbol('deleted');

/**
 * Writes base + journal (up to `job.journalEnd`) as a new base in a temp file, from what is on
 * disk (so the records of every process are kept). Runs without the cache's lock: it writes no
 * file anyone reads, and the caller checks under the lock that the base is still `job.baseId`
 * before it renames the result in. @internal
 */
export async function compactFiles(
  job: CompactionJob,
  progressFor: (total: number) => ProgressReporter | undefined = () => undefined,
): Promise<CompactionOutcome> {
  const { name, path, journalPath } = job;
  const base = readBaseMetaSync(path);
  if (base === undefined || baseIdOf(base.meta) !== job.baseId) return { kind: 'nothing' };
  const baseId = job.baseId;
  // The journal's net effect, key by key (DELETED for a delete): small next to the base.
  const latest = new Map<unknown, unknown>();
  let generation = base.meta.generation;
  let records = 0;
  let journalEntries = 0;
  const opened = await openCacheFile(name, journalPath);
  if (opened === undefined) return { kind: 'nothing' };
  // Records appended after the lock was let go are not this compaction's: they are carried.
  const journal = { ...opened, size: Math.min(opened.size, job.journalEnd) };
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
    await opened.handle.close().catch(() => undefined);
  }
  // Nothing whole to fold in (another base's journal, or only a torn record).
  if (scan === undefined) return { kind: 'nothing' };
  if (records === 0) return { kind: 'no-record' };
  const carries = { baseId, from: scan.end };

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
  let temp: string;
  try {
    temp = await writeTempFile(path, async (openedTemp) => {
      const handle = await openedTemp;
      const put = (bufs: Buffer[]) => writeAllSync(handle.fd, bufs);
      const frame = (batch: unknown[]) => {
        const payload = encodePayload(batch);
        put([encodeFrameHeader(payload), payload]);
        frames++;
        pairs += batch.length / 2;
      };
      put([encodeHeader({ name, savedAt: Date.now(), entries: lowerBound, generation, baseId: newBaseId, carries })]);
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
  return { kind: 'written', temp, baseId: newBaseId, journalEnd: scan.end };
}
