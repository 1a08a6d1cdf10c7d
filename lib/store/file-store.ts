import * as fs from 'node:fs';
import { join } from 'node:path';
import {
  CacheIOError,
  CacheSerializationError,
  CorruptCacheFileError,
  DepcacheError,
} from '../errors';
import {
  type CacheFileMeta,
  type JournalCarry,
  FormatError,
  decodeFrame,
  decodeSteps,
  encodeFrameHeader,
  encodeHeader,
  encodePayload,
  encodeTrailer,
  frameSteps,
} from './file-format';
import { randomUUID } from 'node:crypto';
import type { ProgressReporter, ProgressSource } from '../progress';
import { baseIdOf, journalStepsFor, readBaseMetaSync } from './base-meta';
import type { CompactionJob } from './compaction';
import { COMPACT_IN_THREAD_MIN_BYTES, type CompactionRunner, CompactionThread, compactFilesOffThread } from './compaction-thread';
import { cacheFileName } from './file-name';
import { CACHE_LOCK_STALE_MS, withFileLock, withFileLockSync } from './file-lock';
import {
  type JournalRecord,
  type JournalScan,
  type RecordSource,
  JOURNAL_SUFFIX,
  encodeJournalParts,
  encodeJournalHeader,
  encodeJournalRecord,
  journalRecordSteps,
  readJournalHeaderSync,
} from './journal';
import type { SafeDirectory } from './safe-directory';
import { DecodedEntries } from './decoded-entries';
import { SequentialReader, openCacheFile, openCacheFileSync, parseFile, parseFileSync, wholeFile } from './file-reader';
import { type EntrySnapshot, packedFrame } from './snapshot';
import {
  commitTempFile,
  removeStaleTempFiles,
  writeAll,
  writeAllSync,
  writeFileAtomic,
  writeFileAtomicSync,
  writeTempFile,
} from './atomic-file';

/** What to do with a cache file that fails its checks. */
export type CorruptFilePolicy = 'quarantine' | 'throw';

export { DecodedEntries } from './decoded-entries';

/** A journal append's outcome: what it wrote, and how big the journal and its base are now. */
export interface AppendResult {
  readonly bytes: number;
  readonly journalBytes: number;
  readonly baseBytes: number;
}

/** Where the next journal record goes, as found under the lock. */
interface JournalEnd {
  readonly baseId: string;
  readonly end: number;
  readonly inStep: boolean;
  readonly baseBytes: number;
  readonly baseEntries: number;
}

/** One save's changes, as {@link FileStore.saveChanges} takes them. */
export interface ChangesToSave {
  readonly source: RecordSource;
  /** Changes at most (repeats included), to estimate the record's size. */
  readonly bound: number;
  /** Every entry is in the record (contents that merge with what is saved). */
  readonly all: boolean;
  /** The whole map as the save began, when it may be written as the new base instead. */
  readonly whole: EntrySnapshot | undefined;
}

/** A save's outcome: an append, or (`whole`) a new base. */
export interface SaveResult extends AppendResult {
  readonly whole: boolean;
}

/** What a persistent cache needs of the store that holds its file (v8 or text). */
export interface CacheFileStore {
  readonly directory: string;
  pathFor(name: string): string;
  read(name: string, onCorrupt: CorruptFilePolicy, report: (err: CorruptCacheFileError) => void): Promise<DecodedEntries | undefined>;
  readSync(name: string, onCorrupt: CorruptFilePolicy, report: (err: CorruptCacheFileError) => void): DecodedEntries | undefined;
  write(name: string, snapshot: EntrySnapshot): Promise<number>;
  writeSync(name: string, snapshot: EntrySnapshot): number;
  remove(name: string): Promise<void>;
}

/**
 * Offers a compaction the cache's memory: calls `write` with a copy-on-write snapshot of it
 * and resolves true, or resolves false without calling it (memory has unsaved edits).
 */
export type MemorySnapshotSource = (write: (snapshot: EntrySnapshot) => Promise<number>) => Promise<boolean>;

/** Options of a {@link FileStore}. */
export interface FileStoreOptions {
  /** Entries per CRC-checked frame. @default 2048 */
  readonly frameEntries?: number;
  /** Longest stretch of synchronous work in an async save before it yields, in ms. @default 4 */
  readonly sliceMs?: number;
  /**
   * Saves append the changed entries to a journal beside the file (O(changes)) instead of
   * rewriting it. @default true
   */
  readonly journal?: boolean;
  /** The journal is compacted into a new file once it is larger than this share of the file... @default 0.05 */
  readonly compactShare?: number;
  /** ...and larger than this many bytes. @default 1048576 (1 MiB) */
  readonly compactMinBytes?: number;
}

/**
 * The default of {@link FileStoreOptions.compactShare}. A load pays for every journal byte twice
 * (decoding the record, then overwriting an entry already loaded in a large Map, a cache miss
 * each), so a journal of 10% of the file made loads 1.04-1.17x slower than the compacted file;
 * at 5% the journal costs half that, for compactions twice as often.
 */
export const DEFAULT_COMPACT_SHARE = 0.05;

// How long a writer waits for another process's write of the same cache (a rewrite of a large
// base can take seconds).
const LOCK_WAIT_MS = 30_000;

const FLUSH_BYTES = 4 * 1024 * 1024;

// A follower reads the journal in small reads: each is decoded before the next turn of the loop.
const FOLLOW_CHUNK_BYTES = 128 * 1024;

/**
 * Reads and writes v8 cache files in one directory. Cold path: clarity over micro-speed, except
 * in the frame loop, which is what the save benchmarks measure.
 */
export class FileStore implements CacheFileStore {
  readonly #frameEntries: number;
  readonly #sliceMs: number;
  /** Whether saves append to a journal. */
  readonly journal: boolean;
  readonly #compactShare: number;
  readonly #compactMinBytes: number;
  #directoryReady: Promise<void> | undefined;
  // Per cache: the base this process last saw and the end of the journal's records it knows,
  // so an append in the common case (no other writer) reads nothing before it writes.
  readonly #known = new Map<string, { baseId: string; end: number }>();
  // Per cache: the saved state this process's memory holds (loaded, or written by it, with no
  // other process's record since), so a compaction can write memory instead of decoding the
  // files. Absent when unknown.
  readonly #memoryAt = new Map<string, { baseId: string; end: number }>();
  readonly #compacting = new Map<string, Promise<void>>();
  /** Where long loads, saves and compactions report their progress (the manager's events). */
  progress: ProgressSource = () => undefined;

  /** `place`: the checked directory the files live in. */
  constructor(
    readonly place: SafeDirectory,
    options: FileStoreOptions = {},
  ) {
    const {
      frameEntries = 2048,
      sliceMs = 4,
      journal = true,
      compactShare = DEFAULT_COMPACT_SHARE,
      compactMinBytes = 1024 * 1024,
    } = options;
    if (typeof journal !== 'boolean') throw new TypeError(`journal: expected true or false, got ${String(journal)} (${typeof journal})`);
    if (!(typeof compactShare === 'number' && compactShare > 0)) {
      throw new TypeError(`compactShare: expected a number > 0, got ${String(compactShare)} (${typeof compactShare})`);
    }
    if (!(Number.isInteger(compactMinBytes) && compactMinBytes >= 0)) {
      throw new TypeError(`compactMinBytes: expected a whole number ≥ 0, got ${String(compactMinBytes)} (${typeof compactMinBytes})`);
    }
    this.journal = journal;
    this.#compactShare = compactShare;
    this.#compactMinBytes = compactMinBytes;
    if (!Number.isInteger(frameEntries) || frameEntries < 1) {
      throw new TypeError(
        `frameEntries: expected a positive integer, got ${String(frameEntries)} (${typeof frameEntries})`,
      );
    }
    this.#frameEntries = frameEntries;
    this.#sliceMs = sliceMs;
  }

  get directory(): string {
    return this.place.path;
  }

  pathFor(name: string): string {
    return join(this.directory, cacheFileName(name));
  }

  /**
   * Reads a cache: its file, then the records of its journal. Resolves `undefined` when there is
   * none. A damaged file (or a journal damaged anywhere but in its last record) is moved aside
   * with its journal and reported through `report`, then treated as absent, unless `onCorrupt`
   * is `'throw'`; a last record cut short by a crash is dropped and reported. A file from an
   * unknown format version always throws and is never moved.
   */
  async read(
    name: string,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): Promise<DecodedEntries | undefined> {
    return this.#read(name, onCorrupt, report, {});
  }

  /** {@link read}, read as `options` say. */
  async #read(
    name: string,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
    options: ReadOptions,
  ): Promise<DecodedEntries | undefined> {
    const path = this.pathFor(name);
    if (!this.place.checkForRead()) return undefined;
    const raw = await readCacheFiles(name, path, this.journal ? this.journalPathFor(name) : undefined, this.#loadProgress(name, path), options);
    return raw === undefined ? undefined : this.#decoded(name, path, raw, onCorrupt, report);
  }

  /** The synchronous twin of {@link read}, for the first call of a sync memoized function. */
  readSync(
    name: string,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): DecodedEntries | undefined {
    const path = this.pathFor(name);
    if (!this.place.checkForRead()) return undefined;
    const raw = readCacheFilesSync(name, path, this.journal ? this.journalPathFor(name) : undefined);
    return raw === undefined ? undefined : this.#decoded(name, path, raw, onCorrupt, report);
  }

  /** The journal's path: the cache file's, plus `.journal`. */
  journalPathFor(name: string): string {
    return this.pathFor(name) + JOURNAL_SUFFIX;
  }

  /**
   * Writes a snapshot atomically as a new base (a new base id, so the old journal no longer
   * applies), then removes the journal; yields to the event loop every `sliceMs` of work. Holds
   * the cache's lock meanwhile, so it never interleaves with another process's append.
   */
  async write(name: string, snapshot: EntrySnapshot): Promise<number> {
    return (await this.writeWhole(name, snapshot, false)) as number;
  }

  /**
   * {@link write}, or, with `onlyIfNoBase`, nothing when a base exists by the time the lock is
   * held (resolves undefined): contents that are to merge with what another process saved
   * meanwhile must not replace it.
   */
  async writeWhole(name: string, snapshot: EntrySnapshot, onlyIfNoBase: boolean): Promise<number | undefined> {
    const path = this.pathFor(name);
    await this.#prepareDirectory(name);
    let bytes: number | undefined = 0;
    try {
      await withFileLock(path, LOCK_WAIT_MS, CACHE_LOCK_STALE_MS, async () => {
        if (onlyIfNoBase && fs.existsSync(path)) {
          bytes = undefined;
          return;
        }
        bytes = await this.#writeBaseLocked(name, path, snapshot);
      });
    } catch (err) {
      throw wrapWriteError(name, path, err);
    }
    return bytes;
  }

  /** Writes `snapshot` as the new base and drops the journal; the caller holds the lock. */
  async #writeBaseLocked(name: string, path: string, snapshot: EntrySnapshot, op: 'save' | 'compact' = 'save'): Promise<number> {
    const baseId = randomUUID();
    let written = 0;
    await writeFileAtomic(path, async (opened) => {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let sliceStart = performance.now();
      for (const buf of this.#encode(name, snapshot, baseId, op)) {
        pending.push(buf);
        pendingBytes += buf.length;
        if (pendingBytes >= FLUSH_BYTES) {
          written += pendingBytes;
          const batch = pending;
          pending = [];
          pendingBytes = 0;
          await writeAll(await opened, batch);
          sliceStart = performance.now();
        } else if (performance.now() - sliceStart > (op === 'compact' ? this.#sliceMs / 2 : this.#sliceMs)) {
          // A compaction is background work: shorter slices, so a scavenge landing in one (8-10 ms
          // next to a heap holding a 1M-entry cache) makes a shorter stall.
          await new Promise<void>((resolve) => setImmediate(resolve));
          sliceStart = performance.now();
        }
      }
      written += pendingBytes;
      await writeAll(await opened, pending);
    }, this.place.fileMode);
    this.#dropJournal(name, baseId);
    this.#memoryAt.set(name, { baseId, end: -1 });
    return written;
  }

  /** Writes a snapshot atomically without ever yielding: the exit path, where nothing async runs. */
  writeSync(name: string, snapshot: EntrySnapshot): number {
    const path = this.pathFor(name);
    const baseId = randomUUID();
    let bytes = 0;
    try {
      this.place.prepareForWrite();
      withFileLockSync(path, 1000, CACHE_LOCK_STALE_MS, () => {
        writeFileAtomicSync(path, (fd) => {
          const buffers = Array.from(this.#encode(name, snapshot, baseId));
          for (const b of buffers) bytes += b.length;
          writeAllSync(fd, buffers);
        }, this.place.fileMode);
        this.#dropJournal(name, baseId);
      });
    } catch (err) {
      throw wrapWriteError(name, path, err);
    }
    return bytes;
  }

  /**
   * Appends one save's changes to the journal (under the cache's lock), fsynced. Resolves
   * `undefined` when there is no base to append to (nothing saved yet, or it was deleted): the
   * caller writes a whole file instead.
   * @throws {CacheSerializationError} ESERIALIZE when a value cannot be written (nothing is)
   * @throws {CorruptCacheFileError} when the journal is damaged before its end (a load quarantines it)
   */
  async append(name: string, record: JournalRecord): Promise<AppendResult | undefined> {
    const path = this.pathFor(name);
    await this.#prepareDirectory(name);
    const bytes = encodeRecord(name, record);
    try {
      return await withFileLock(path, LOCK_WAIT_MS, CACHE_LOCK_STALE_MS, () => this.#appendLocked(name, bytes));
    } catch (err) {
      throw wrapWriteError(name, this.journalPathFor(name), err);
    }
  }

  /** The synchronous twin of {@link append}, for the exit flush: O(changes) there too. */
  appendSync(name: string, record: JournalRecord): AppendResult | undefined {
    const path = this.pathFor(name);
    const bytes = encodeRecord(name, record);
    try {
      this.place.prepareForWrite();
      return withFileLockSync(path, 1000, CACHE_LOCK_STALE_MS, () => this.#appendLocked(name, bytes));
    } catch (err) {
      throw wrapWriteError(name, this.journalPathFor(name), err);
    }
  }

  /** Whether a journal of `journalBytes` beside a base of `baseBytes` is due for compaction. */
  compactionDue(result: AppendResult): boolean {
    return result.journalBytes > this.#compactMinBytes && result.journalBytes > this.#compactShare * result.baseBytes;
  }

  /**
   * Rewrites base + journal as a new base, from what is on disk (so the records of every process
   * are kept). The cache's lock is held only at the start (to note where the journal ends) and at
   * the end (to rename the new base in and carry the records appended meanwhile into its
   * journal): saves and appends go on while the new base is written. A crash at any step leaves
   * the old base with its journal, or the new base, whose header names the old journal's records
   * it carries, with either journal. Concurrent calls for one cache share one run.
   *
   * With `fromMemory`, when memory is exactly the saved state, memory is written instead, under
   * the lock from start to finish (the caller holds the cache's queue then anyway).
   */
  compact(name: string, fromMemory?: MemorySnapshotSource): Promise<void> {
    let running = this.#compacting.get(name);
    if (running === undefined) {
      running = this.#compactNow(name, fromMemory)
        .catch((err: unknown) => {
          throw err instanceof DepcacheError ? err : new CacheIOError(name, this.pathFor(name), 'compact', err);
        })
        .finally(() => this.#compacting.delete(name));
      this.#compacting.set(name, running);
    }
    return running;
  }

  /** Resolves when the compaction of `name` running now (if any) is over, whatever its outcome. */
  async compactionSettled(name: string): Promise<void> {
    await this.#compacting.get(name)?.catch(() => undefined);
  }

  /**
   * Runs the file compaction between its two locked steps (a worker thread for a large base).
   * @internal tests replace it to hold a compaction between them
   */
  compactFilesWith: typeof compactFilesOffThread = compactFilesOffThread;

  /**
   * The thread a file compaction of a base of about `baseBytes` runs on, started now, or
   * undefined to compact in place (a small base).
   * @internal tests replace it to hold a thread's start
   */
  startCompactionThread: (baseBytes: number) => CompactionRunner | undefined = (baseBytes) =>
    baseBytes >= COMPACT_IN_THREAD_MIN_BYTES ? new CompactionThread() : undefined;

  async #compactNow(name: string, fromMemory: MemorySnapshotSource | undefined): Promise<void> {
    // From the files, a large base is compacted on a thread, booted before the lock is taken: a
    // save made meanwhile waits neither for the boot nor for a lock taken ahead of it. (With
    // memory to offer, the thread is started only once the files turn out to be needed.)
    const thread = fromMemory === undefined ? this.startCompactionThread(fileBytes(this.pathFor(name))) : undefined;
    try {
      if (thread !== undefined) await thread.ready;
      await this.#compactFrom(name, fromMemory, thread);
    } finally {
      thread?.stop();
    }
  }

  async #compactFrom(name: string, fromMemory: MemorySnapshotSource | undefined, thread: CompactionRunner | undefined): Promise<void> {
    const path = this.pathFor(name);
    const journalPath = this.journalPathFor(name);
    const start = await withFileLock(path, LOCK_WAIT_MS, CACHE_LOCK_STALE_MS, async () => {
      const base = readBaseMetaSync(path);
      if (base === undefined) return undefined;
      const baseId = baseIdOf(base.meta);
      let header = readJournalHeaderSync(journalPath);
      if (header !== undefined && header.meta.baseId !== baseId) {
        if (!carriesJournalOf(base.meta, header)) {
          this.#dropJournal(name, baseId); // left by a rewrite that crashed after its rename
          return undefined;
        }
        // A compaction crashed between its renames: carry first, so the journal is this base's.
        this.#carryJournalLockedSync(name, base.meta, header);
        header = readJournalHeaderSync(journalPath);
      }
      if (header === undefined || header.size <= header.length) return undefined;
      const memory = this.#memoryAt.get(name);
      // Memory holds exactly the saved state (its base, every record of the journal, nobody
      // else's): write it as the new base, as a whole save does (copy-on-write, sliced), instead
      // of decoding the files.
      const inStep = memory !== undefined && memory.baseId === baseId && header.size === memory.end;
      if (inStep && fromMemory !== undefined) {
        const written = await fromMemory((snapshot) => this.#writeBaseLocked(name, path, snapshot, 'compact'));
        if (written) return undefined;
      }
      return { baseId, journalEnd: header.size, baseBytes: base.size };
    });
    if (start === undefined) return;
    const job: CompactionJob = {
      name,
      path,
      journalPath,
      frameEntries: this.#frameEntries,
      fileMode: this.place.fileMode,
      sliceMs: this.#sliceMs,
      baseId: start.baseId,
      journalEnd: start.journalEnd,
    };
    const outcome = await this.compactFilesWith(job, start.baseBytes, (total) => this.progress(name, 'compact', total), thread);
    if (outcome.kind === 'damaged') {
      throw new CorruptCacheFileError(name, outcome.file === 'base' ? path : journalPath, `not compacted: ${outcome.message}`);
    }
    if (outcome.kind === 'nothing') return;
    if (outcome.kind === 'no-record') {
      // Only a torn record: dropped, unless someone appended since (that cut it already).
      await withFileLock(path, LOCK_WAIT_MS, CACHE_LOCK_STALE_MS, () => {
        const header = readJournalHeaderSync(journalPath);
        if (header?.meta.baseId === start.baseId && header.size === start.journalEnd) this.#dropJournal(name, start.baseId);
      });
      return;
    }
    try {
      await withFileLock(path, LOCK_WAIT_MS, CACHE_LOCK_STALE_MS, () => this.#installCompactedLocked(name, start, outcome));
    } finally {
      await fs.promises.unlink(outcome.temp).catch(() => undefined); // still there when not installed
    }
  }

  /**
   * A compaction's last step, under the lock: unless the base was replaced meanwhile (then the new
   * base is stale and is dropped), the records appended since the compaction read the journal
   * are copied byte for byte into the new base's journal, and both are renamed in, base first
   * (its header names what it carries, for a crash between the renames).
   */
  async #installCompactedLocked(
    name: string,
    start: { baseId: string; journalEnd: number },
    outcome: { temp: string; baseId: string; journalEnd: number },
  ): Promise<void> {
    const path = this.pathFor(name);
    const journalPath = this.journalPathFor(name);
    const base = readBaseMetaSync(path);
    if (base === undefined || baseIdOf(base.meta) !== start.baseId) return; // rewritten whole since: that holds everything
    const header = readJournalHeaderSync(journalPath);
    const from = outcome.journalEnd;
    // Only appends (after whole records) and the cut of a torn tail change a base's journal.
    if (header === undefined || header.meta.baseId !== start.baseId || header.size < from) return;
    // The compaction stopped short of where the journal ended (a torn tail a crash left): the
    // bytes there are whole records only if someone appended since (cutting it); find out.
    const carryEnd = from < start.journalEnd ? await wholeRecordsEnd(name, journalPath, from) : header.size;
    const head = encodeJournalHeader({ name, baseId: outcome.baseId });
    let journalTemp: string | undefined;
    if (carryEnd > from) {
      const carried = await readRange(journalPath, from, carryEnd);
      journalTemp = await writeTempFile(journalPath, async (opened) => writeAll(await opened, [head, carried]), this.place.fileMode);
    }
    // What this process knew of the old journal, at its offsets in the new one.
    const moved = (at: { baseId: string; end: number } | undefined) =>
      at !== undefined && at.baseId === start.baseId && at.end >= from && at.end <= carryEnd
        ? { baseId: outcome.baseId, end: journalTemp === undefined ? -1 : at.end - from + head.length }
        : undefined;
    const known = moved(this.#known.get(name));
    const memory = moved(this.#memoryAt.get(name));
    try {
      await commitTempFile(outcome.temp, path);
    } catch (err) {
      if (journalTemp !== undefined) await fs.promises.unlink(journalTemp).catch(() => undefined);
      throw err;
    }
    // A crash here leaves the new base beside the old journal: its header says what applies.
    if (journalTemp !== undefined) await commitTempFile(journalTemp, journalPath);
    else this.#dropJournal(name, outcome.baseId);
    // Unknown (a follower had not read another's records yet): the next read starts afresh.
    if (known !== undefined) this.#known.set(name, known);
    else this.#known.delete(name);
    if (memory !== undefined) this.#memoryAt.set(name, memory);
    else this.#memoryAt.delete(name);
  }

  /**
   * Under the lock, after a compaction crashed between its renames (the base carries the old
   * journal's records from some offset): rewrites the journal as this base's, those records
   * copied byte for byte. Synchronous: a cold path, and appends at exit need it too.
   */
  #carryJournalLockedSync(name: string, meta: CacheFileMeta, header: { size: number }): void {
    const carries = meta.carries as JournalCarry;
    const journalPath = this.journalPathFor(name);
    const fd = fs.openSync(journalPath, 'r');
    let carried: Buffer;
    try {
      carried = Buffer.allocUnsafe(header.size - carries.from);
      let done = 0;
      while (done < carried.length) {
        const n = fs.readSync(fd, carried, done, carried.length - done, carries.from + done);
        if (n === 0) break;
        done += n;
      }
      carried = carried.subarray(0, done);
    } finally {
      fs.closeSync(fd);
    }
    const head = encodeJournalHeader({ name, baseId: baseIdOf(meta) });
    writeFileAtomicSync(journalPath, (out) => writeAllSync(out, [head, carried]), this.place.fileMode);
    this.#known.delete(name);
    this.#memoryAt.delete(name);
  }

  /**
   * What other processes saved since this store last read or wrote the cache: the journal
   * records appended after the end it knows (`records`), or, when the file was rewritten whole
   * meanwhile by someone else (a clear, a rebuild), the whole saved state (`whole`). Undefined
   * when nothing changed or nothing is saved. Reads asynchronously; see {@link followSince} for
   * the records a part at a time.
   */
  async readSince(
    name: string,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): Promise<{ records: JournalRecord[] } | { whole: DecodedEntries } | undefined> {
    const update = await this.followSince(name, onCorrupt, report);
    if (update === undefined || 'whole' in update) return update;
    const records: JournalRecord[] = [];
    for await (const part of update.parts) records.push(part);
    return records.length === 0 ? undefined : { records };
  }

  /**
   * {@link readSince}, for a follower that applies what it reads in slices: `parts` hands the
   * new records as they are read, one part (at most 2,048 changes, or about 512 KiB) at a time,
   * in order, a record's parts only once its last part is read (a record being appended, or torn
   * by a crash, is never handed out half). The file is read asynchronously in small reads, a
   * part decoded at a time, with a turn of the event loop between parts when a stretch of work
   * passed `sliceMs`. A journal damaged part-way ends the parts there (the next load handles it).
   * What this store knows of the journal moves on as parts are taken: a follower that stops
   * early reads the rest next time.
   */
  async followSince(
    name: string,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): Promise<{ parts: AsyncIterable<JournalRecord> } | { whole: DecodedEntries } | undefined> {
    const path = this.pathFor(name);
    const known = this.#known.get(name);
    const base = readBaseMetaSync(path);
    if (base === undefined) return undefined;
    const baseId = baseIdOf(base.meta);
    if (known === undefined || known.baseId !== baseId) {
      // Rewritten by another process (a compaction, a clear, a rebuild): merge the whole state.
      const whole = await this.#readFollowed(name, onCorrupt, report);
      return whole === undefined ? undefined : { whole };
    }
    const journalPath = this.journalPathFor(name);
    const header = readJournalHeaderSync(journalPath);
    if (header === undefined || header.meta.baseId !== baseId) return undefined;
    const from = known.end < header.length ? header.length : known.end;
    if (header.size <= from) return undefined;
    return { parts: this.#partsSince(name, journalPath, baseId, from) };
  }

  async *#partsSince(name: string, journalPath: string, baseId: string, from: number): AsyncGenerator<JournalRecord> {
    const file = await openCacheFile(name, journalPath);
    if (file === undefined) return;
    // Whole records read and not handed out yet, with the offset after each.
    const whole: { parts: readonly JournalRecord[]; end: number }[] = [];
    const steps = journalRecordSteps(file.size, from, () => undefined, (parts, end) => whole.push({ parts, end }));
    const reader = new SequentialReader(name, journalPath, file, from, FOLLOW_CHUNK_BYTES);
    let sliceStart = performance.now();
    try {
      let step = steps.next();
      for (;;) {
        while (whole.length > 0) {
          const { parts, end } = whole.shift() as { parts: readonly JournalRecord[]; end: number };
          this.#known.set(name, { baseId, end });
          for (const part of parts) {
            yield part;
            if (performance.now() - sliceStart > this.#sliceMs) {
              await new Promise<void>((resolve) => setImmediate(resolve));
              sliceStart = performance.now();
            }
          }
        }
        if (step.done) break;
        step = steps.next(await reader.take(step.value));
      }
    } catch (err) {
      if (!(err instanceof FormatError)) throw err; // damage: the next load handles it
    } finally {
      await file.handle.close().catch(() => undefined);
    }
  }

  /**
   * {@link read} for a follower, under the cache's own policy. Following runs in the background,
   * where nobody awaits a throw: under 'throw' the damage is reported and the file stays where it
   * is (this process keeps what it has, and a later load throws as the policy says). Checked
   * in slices and deserialized as it is merged ({@link LazyFrames}): nobody waits for a
   * follower's read, and decoded in one go, the 1 MiB chunk read between two awaits stalled the
   * event loop 25-35 ms at 1M entries.
   */
  async #readFollowed(name: string, onCorrupt: CorruptFilePolicy, report: (err: CorruptCacheFileError) => void): Promise<DecodedEntries | undefined> {
    try {
      return await this.#read(name, onCorrupt, report, { sliceMs: this.#sliceMs, lazy: true });
    } catch (err) {
      if (onCorrupt !== 'throw' || !(err instanceof CorruptCacheFileError)) throw err;
      report(err);
      return undefined;
    }
  }

  /** Removes the cache file and its journal; missing files are not an error. */
  async remove(name: string): Promise<void> {
    await removeCacheFile(name, this.pathFor(name));
    await removeCacheFile(name, this.journalPathFor(name));
    this.#known.delete(name);
    this.#memoryAt.delete(name);
  }

  /** Size of the cache file in bytes, or undefined when there is none. */
  async fileSize(name: string): Promise<number | undefined> {
    try {
      return (await fs.promises.stat(this.pathFor(name))).size;
    } catch {
      return undefined;
    }
  }

  /**
   * Where the next record goes, under the lock: after the last whole record (a torn tail cut
   * off, a journal for this base started when there is none). Undefined when there is no base.
   * `inStep`: memory holds exactly the saved state up to there (nobody else's record since).
   */
  #journalEndLocked(name: string): JournalEnd | undefined {
    const base = readBaseMetaSync(this.pathFor(name));
    if (base === undefined) return undefined;
    const baseId = baseIdOf(base.meta);
    const journalPath = this.journalPathFor(name);
    let header = readJournalHeaderSync(journalPath);
    if (header !== undefined && header.meta.baseId !== baseId && carriesJournalOf(base.meta, header)) {
      // A compaction crashed between its renames: its records after `from` are this base's.
      this.#carryJournalLockedSync(name, base.meta, header);
      header = readJournalHeaderSync(journalPath);
    }
    let end: number;
    if (header === undefined || header.meta.baseId !== baseId) {
      // None yet, or one left by an earlier base (a rewrite that crashed after its rename,
      // whose records are in the base now): start this base's journal.
      const head = encodeJournalHeader({ name, baseId });
      writeFileAtomicSync(journalPath, (fd) => writeAllSync(fd, [head]), this.place.fileMode);
      end = head.length;
    } else {
      const known = this.#known.get(name);
      let from = header.length;
      if (known !== undefined && known.baseId === baseId && known.end >= header.length && known.end <= header.size) from = known.end;
      end = header.size;
      if (from !== header.size) {
        // Other processes appended since (or a crash left a torn tail): check what follows.
        const file = openCacheFileSync(name, journalPath);
        if (file === undefined) return undefined; // removed meanwhile; the next save writes whole
        let scan: JournalScan;
        try {
          scan = parseFileSync(name, journalPath, file, journalRecordSteps(file.size, from, () => undefined), from);
        } catch (err) {
          if (err instanceof FormatError) throw new CorruptCacheFileError(name, journalPath, err.message);
          throw err;
        } finally {
          fs.closeSync(file.handle);
        }
        // A torn tail was never acknowledged to anyone: cut it off, so records follow whole ones.
        if (scan.torn) fs.truncateSync(journalPath, scan.end);
        end = scan.end;
      }
    }
    const memory = this.#memoryAt.get(name);
    // In step only when the record goes right after what memory holds (no one else's between).
    const inStep = memory !== undefined && memory.baseId === baseId && (memory.end === end || (memory.end === -1 && header?.meta.baseId !== baseId));
    return { baseId, end, inStep, baseBytes: base.size, baseEntries: base.meta.entries };
  }

  /** After a record of `bytes` went in at `at.end`: what this store knows, and the outcome. */
  #appended(name: string, at: JournalEnd, bytes: number): AppendResult {
    const end = at.end + bytes;
    this.#known.set(name, { baseId: at.baseId, end });
    if (at.inStep) this.#memoryAt.set(name, { baseId: at.baseId, end });
    else this.#memoryAt.delete(name);
    return { bytes, journalBytes: end, baseBytes: at.baseBytes };
  }

  /** The append itself, run under the lock (synchronous: a few small writes and one fsync). */
  #appendLocked(name: string, record: Buffer): AppendResult | undefined {
    const at = this.#journalEndLocked(name);
    if (at === undefined) return undefined;
    const fd = fs.openSync(this.journalPathFor(name), 'r+');
    try {
      let written = 0;
      while (written < record.length) {
        const n = fs.writeSync(fd, record, written, record.length - written, at.end + written);
        if (n <= 0) throw Object.assign(new Error(`a write of ${record.length - written} bytes wrote nothing`), { code: 'EIO' });
        written += n;
      }
      fs.fsyncSync(fd);
    } catch (err) {
      // Leave no half record: the next append would take it for corruption.
      try {
        fs.ftruncateSync(fd, at.end);
      } catch {
        // the next append finds and cuts the torn tail
      }
      throw err;
    } finally {
      fs.closeSync(fd);
    }
    return this.#appended(name, at, record.length);
  }

  /**
   * One save's changes, under the cache's lock: appended to the journal as one record, encoded
   * part by part with a yield to the event loop every `sliceMs` (the source reads the map as it
   * was when the save began), written and fsynced asynchronously. A crash part-way leaves a
   * record without its last part, which no reader applies. Or, when memory holds exactly what
   * is saved and the record would be a large share of the base (every entry, or enough that a
   * compaction would follow at once), `whole` is written as the new base instead: the same
   * state, without writing everything twice. With no base, `whole` is written if given (else
   * resolves undefined). Contents that merge with another process's save are always appended,
   * so that process's keys stay.
   * @throws {CacheSerializationError} ESERIALIZE when a value cannot be written (nothing is)
   */
  async saveChanges(name: string, changes: ChangesToSave): Promise<SaveResult | undefined> {
    const path = this.pathFor(name);
    await this.#prepareDirectory(name);
    try {
      return await withFileLock(path, LOCK_WAIT_MS, CACHE_LOCK_STALE_MS, async (): Promise<SaveResult | undefined> => {
        const at = this.#journalEndLocked(name);
        const whole = changes.whole;
        if (whole !== undefined && (at === undefined || (at.inStep && (changes.all || this.#wholeIsCheaper(at, changes.bound))))) {
          const bytes = await this.#writeBaseLocked(name, path, whole);
          return { bytes, journalBytes: 0, baseBytes: bytes, whole: true };
        }
        if (at === undefined) return undefined;
        const bytes = await this.#appendPartsLocked(name, at, changes.source);
        return { ...this.#appended(name, at, bytes), whole: false };
      });
    } catch (err) {
      throw wrapWriteError(name, this.journalPathFor(name), err);
    }
  }

  /**
   * Whether a save should offer its whole map as well as its changes (see {@link saveChanges}):
   * true unless the files, as this store last saw them, rule a whole write out. Synchronous and
   * cheap (a base header), for the save's start, where the snapshot must be taken.
   */
  mayWriteWhole(name: string, bound: number, all: boolean): boolean {
    const base = readBaseMetaSync(this.pathFor(name));
    if (base === undefined) return true;
    const baseId = baseIdOf(base.meta);
    const memory = this.#memoryAt.get(name);
    if (memory === undefined || memory.baseId !== baseId) return false;
    if (all) return true;
    return this.#wholeIsCheaper({ baseId, end: Math.max(0, memory.end), inStep: true, baseBytes: base.size, baseEntries: base.meta.entries }, bound);
  }

  /** Whether appending about `changes` entries would make the journal due for compaction at once. */
  #wholeIsCheaper(at: JournalEnd, changes: number): boolean {
    const estimate = (at.baseBytes * changes) / Math.max(1, at.baseEntries);
    return this.compactionDue({ bytes: estimate, journalBytes: at.end + estimate, baseBytes: at.baseBytes });
  }

  /** Encodes `source` part by part and writes it at `at.end`, fsynced; returns the bytes. */
  async #appendPartsLocked(name: string, at: JournalEnd, source: RecordSource): Promise<number> {
    const handle = await fs.promises.open(this.journalPathFor(name), 'r+');
    let position = at.end;
    try {
      const parts = encodeJournalParts(source);
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let sliceStart = performance.now();
      for (;;) {
        let step: IteratorResult<Buffer, number>;
        try {
          step = parts.next();
        } catch (err) {
          throw unserializableInPart(name, err);
        }
        if (step.done) break;
        pending.push(step.value);
        pendingBytes += step.value.length;
        if (pendingBytes >= FLUSH_BYTES) {
          position = await writeAt(handle, pending, position);
          pending = [];
          pendingBytes = 0;
          sliceStart = performance.now();
        } else if (performance.now() - sliceStart > this.#sliceMs) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          sliceStart = performance.now();
        }
      }
      position = await writeAt(handle, pending, position);
      await handle.sync();
    } catch (err) {
      // Leave no half record: the next append would take it for corruption.
      await handle.truncate(at.end).catch(() => undefined);
      throw err;
    } finally {
      await handle.close().catch(() => undefined);
    }
    return position - at.end;
  }

  /** After a new base: the old journal no longer applies; remove it (a leftover is ignored anyway). */
  /** The reporter of a load of `path`, sized by its header (read only when someone listens). */
  #loadProgress(name: string, path: string): ProgressReporter | undefined {
    if (this.progress(name, 'load', 0) === undefined) return undefined;
    const base = readBaseMetaSync(path);
    return base === undefined ? undefined : this.progress(name, 'load', base.meta.entries);
  }

  #dropJournal(name: string, baseId: string): void {
    try {
      fs.unlinkSync(this.journalPathFor(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.#known.set(name, { baseId, end: -1 });
  }

  *#encode(name: string, snapshot: EntrySnapshot, baseId: string, op: 'save' | 'compact' = 'save'): Generator<Buffer> {
    yield* encodeCacheFile(name, snapshot, baseId, this.#frameEntries, this.progress(name, op, snapshot.size));
  }

  #decoded(
    name: string,
    path: string,
    { meta, batches, records, journal }: CacheFilesRead,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): DecodedEntries | undefined {
    let failure = meta instanceof FormatError ? meta : undefined;
    if (!(meta instanceof FormatError) && meta.name !== name) {
      failure = new FormatError(`file holds cache ${JSON.stringify(meta.name)}, not this one`);
    }
    if (failure === undefined && journal instanceof FormatError) {
      // The base is whole but its journal is not: together they are not a state anyone saved.
      failure = new FormatError(`its journal is damaged: ${journal.message}`);
    }
    if (failure !== undefined) {
      const handled = handleDecodeFailure(failure, name, path, onCorrupt, report);
      // The journal goes aside with its base: kept for inspection, never applied to another.
      if (onCorrupt !== 'throw' && this.journal) quarantineIfPresent(name, this.journalPathFor(name));
      return handled;
    }
    const base = meta as CacheFileMeta;
    const baseId = baseIdOf(base);
    this.#memoryAt.set(name, { baseId, end: journal !== undefined && !(journal instanceof FormatError) ? journal.end : -1 });
    if (journal !== undefined && !(journal instanceof FormatError) && journal.carried === true) {
      // Offsets in an earlier base's journal, which the next append rewrites as this base's.
      this.#memoryAt.delete(name);
      this.#known.delete(name);
    } else if (journal !== undefined && !(journal instanceof FormatError)) {
      this.#known.set(name, { baseId, end: journal.end });
      if (journal.torn) {
        report(
          new CorruptCacheFileError(name, this.journalPathFor(name), `the last journal record was cut short (a save interrupted by a crash): dropped; the ${records.length} whole record(s) before it are loaded`, {
            code: 'ETORN',
          }),
        );
      }
    } else this.#known.set(name, { baseId, end: -1 });
    const last = records[records.length - 1];
    const generation = last?.generation ?? base.generation;
    return new DecodedEntries(batches, generation === base.generation ? base : { ...base, generation }, records);
  }

  async #prepareDirectory(name: string): Promise<void> {
    this.#directoryReady ??= (async () => {
      this.place.prepareForWrite();
      await removeStaleTempFiles(this.directory);
    })();
    try {
      await this.#directoryReady;
    } catch (err) {
      this.#directoryReady = undefined;
      if (err instanceof DepcacheError) throw err;
      throw new CacheIOError(name, this.directory, 'create directory', err);
    }
  }
}

/**
 * Reads a whole cache file (text formats); undefined when there is none, CacheIOError for any
 * other failure or anything that is not a regular file. @internal
 */
export async function readCacheFile(name: string, path: string): Promise<Buffer | undefined> {
  const file = await openCacheFile(name, path);
  if (file === undefined) return undefined;
  try {
    return await parseFile(name, path, file, wholeFile(file.size));
  } finally {
    await file.handle.close().catch(() => undefined);
  }
}

/** Removes a cache file; a missing one is not an error, others become CacheIOError. @internal */
export async function removeCacheFile(name: string, path: string): Promise<void> {
  try {
    await fs.promises.unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CacheIOError(name, path, 'delete', err);
  }
}

/** The synchronous twin of {@link readCacheFile}. @internal */
export function readCacheFileSync(name: string, path: string): Buffer | undefined {
  const file = openCacheFileSync(name, path);
  if (file === undefined) return undefined;
  try {
    return parseFileSync(name, path, file, wholeFile(file.size));
  } finally {
    fs.closeSync(file.handle);
  }
}

/**
 * The corruption rules every store follows: a file of an unknown version always throws and is
 * never moved; with onCorrupt 'throw' a bad file throws and stays; otherwise it is moved aside,
 * reported, and treated as absent. Rethrows anything that is not a FormatError. @internal
 */
export function handleDecodeFailure(
  err: unknown,
  name: string,
  path: string,
  onCorrupt: CorruptFilePolicy,
  report: (err: CorruptCacheFileError) => void,
): undefined {
  if (!(err instanceof FormatError)) throw err;
  if (err.kind === 'version') {
    throw new CorruptCacheFileError(name, path, err.message, { code: 'EFORMAT_VERSION' });
  }
  if (onCorrupt === 'throw') throw new CorruptCacheFileError(name, path, err.message);
  const quarantinedTo = quarantine(name, path);
  report(new CorruptCacheFileError(name, path, err.message, { quarantinedTo }));
  return undefined;
}

/**
 * Moves a bad file aside so it is kept for inspection and never loaded again, to
 * `<file>.corrupt-<timestamp>` (`-<n>` added when that name is taken): never over an earlier one.
 * @internal
 */
export function quarantine(name: string, path: string): string {
  const stamp = Date.now();
  for (let n = 0; ; n++) {
    const target = n === 0 ? `${path}.corrupt-${stamp}` : `${path}.corrupt-${stamp}-${n}`;
    try {
      // link + unlink, not rename: rename would silently replace a file already at `target`.
      fs.linkSync(path, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EXDEV') return renameAside(name, path, target);
      throw new CacheIOError(name, path, 'move corrupt file aside', err);
    }
    try {
      fs.unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CacheIOError(name, path, 'move corrupt file aside', err);
    }
    return target;
  }
}

/** For file systems without hard links: rename, after checking the name is free. */
function renameAside(name: string, path: string, first: string): string {
  let target = first;
  for (let n = 1; fs.existsSync(target); n++) target = `${first}-${n}`;
  try {
    fs.renameSync(path, target);
    return target;
  } catch (err) {
    throw new CacheIOError(name, path, 'move corrupt file aside', err);
  }
}

/** Names of quarantined files, as {@link quarantine} makes them. @internal */
export const QUARANTINED_FILE = /\.corrupt-\d+(-\d+)?$/;

/**
 * The frames of a base as read and checked (CRC, shape, the file's structure), deserialized one
 * at a time as they are iterated, each time. For a follower's merge: entries decoded ahead all
 * live until the merge ends, and the scavenges that copied them as they were decoded paused the
 * event loop ~10 ms each at 1M entries; decoded as they are merged, their keys and arrays die
 * young. The payloads stay off the heap meanwhile. A frame that passed its CRC but does not
 * deserialize (a writer's bug, not damage on disk) throws part-way through.
 */
export class LazyFrames implements Iterable<unknown[]> {
  readonly #frames: { payload: Buffer; entries: number }[] = [];

  constructor(
    readonly name: string,
    readonly path: string,
  ) {}

  add(payload: Buffer, entries: number): void {
    this.#frames.push({ payload, entries });
  }

  *[Symbol.iterator](): Iterator<unknown[]> {
    for (let i = 0; i < this.#frames.length; i++) {
      const { payload, entries } = this.#frames[i] as { payload: Buffer; entries: number };
      try {
        yield decodeFrame(payload, i, entries);
      } catch (err) {
        if (err instanceof FormatError) throw new CorruptCacheFileError(this.name, this.path, `${err.message} (after its checksum passed; what was merged before it stays)`);
        throw err;
      }
    }
  }
}

/** How {@link readCacheFiles} reads. @internal */
export interface ReadOptions {
  /** Yield to the event loop after this much decoding, in ms. @default Infinity */
  readonly sliceMs?: number;
  /** Check the base's frames but leave them to be deserialized as they are iterated ({@link LazyFrames}). */
  readonly lazy?: boolean;
}

/** A base and its journal as read, before anything is judged: errors are values here. */
export interface CacheFilesRead {
  readonly meta: CacheFileMeta | FormatError;
  readonly batches: Iterable<unknown[]>;
  readonly records: JournalRecord[];
  /** undefined: no journal (or none that applies to this base). */
  readonly journal: JournalScan | FormatError | undefined;
}

/**
 * Reads a cache file and, when `journalPath` is given, the journal records that apply to it,
 * catching format damage as values (the caller decides what it means). Undefined when there is
 * no file. @internal
 */
export async function readCacheFiles(
  name: string,
  path: string,
  journalPath: string | undefined,
  progress?: ProgressReporter,
  { sliceMs = Number.POSITIVE_INFINITY, lazy = false }: ReadOptions = {},
): Promise<CacheFilesRead | undefined> {
  const file = await openCacheFile(name, path);
  if (file === undefined) return undefined;
  const frames = lazy ? new LazyFrames(name, path) : undefined;
  const decoded: unknown[][] = [];
  const batches: Iterable<unknown[]> = frames ?? decoded;
  const records: JournalRecord[] = [];
  let meta: CacheFileMeta | FormatError;
  let done = 0;
  try {
    const steps = frames !== undefined
      ? frameSteps(file.size, (payload, _frame, entries) => {
          frames.add(payload, entries);
          progress?.update((done += entries));
        })
      : decodeSteps(file.size, (pairs) => {
          decoded.push(pairs);
          progress?.update((done += pairs.length / 2));
        });
    meta = await parseFile(name, path, file, steps, 0, undefined, sliceMs);
    progress?.finish();
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    meta = err;
  } finally {
    await file.handle.close().catch(() => undefined); // closed before a quarantine moves it
  }
  if (meta instanceof FormatError || journalPath === undefined) return { meta, batches, records, journal: undefined };
  const journalFile = await openCacheFile(name, journalPath);
  if (journalFile === undefined) return { meta, batches, records, journal: undefined };
  let journal: JournalScan | FormatError | undefined;
  try {
    journal = await parseFile(name, journalPath, journalFile, journalStepsFor(journalFile.size, meta, (r) => records.push(r)), 0, undefined, sliceMs);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    journal = err;
  } finally {
    await journalFile.handle.close().catch(() => undefined);
  }
  return { meta, batches, records, journal };
}

/** The synchronous twin of {@link readCacheFiles}. @internal */
export function readCacheFilesSync(name: string, path: string, journalPath: string | undefined): CacheFilesRead | undefined {
  const file = openCacheFileSync(name, path);
  if (file === undefined) return undefined;
  const batches: unknown[][] = [];
  const records: JournalRecord[] = [];
  let meta: CacheFileMeta | FormatError;
  try {
    meta = parseFileSync(name, path, file, decodeSteps(file.size, (pairs) => batches.push(pairs)));
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    meta = err;
  } finally {
    fs.closeSync(file.handle);
  }
  if (meta instanceof FormatError || journalPath === undefined) return { meta, batches, records, journal: undefined };
  const journalFile = openCacheFileSync(name, journalPath);
  if (journalFile === undefined) return { meta, batches, records, journal: undefined };
  let journal: JournalScan | FormatError | undefined;
  try {
    journal = parseFileSync(name, journalPath, journalFile, journalStepsFor(journalFile.size, meta, (r) => records.push(r)));
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    journal = err;
  } finally {
    fs.closeSync(journalFile.handle);
  }
  return { meta, batches, records, journal };
}

/** Whether the journal of `header` is an earlier base's whose records a base of `meta` carries. */
function carriesJournalOf(meta: CacheFileMeta, header: { meta: { baseId: string }; length: number; size: number }): boolean {
  const carries = meta.carries;
  return carries !== undefined && carries.baseId === header.meta.baseId && carries.from >= header.length && carries.from <= header.size;
}

/** The size of a file, 0 when there is none: a hint, read without the lock (whether to start a thread ahead). */
function fileBytes(path: string): number {
  try {
    return fs.statSync(path).size;
  } catch {
    return 0;
  }
}

/** The bytes of `path` from `from` to `to`, read asynchronously. */
async function readRange(path: string, from: number, to: number): Promise<Buffer> {
  const handle = await fs.promises.open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(to - from);
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await handle.read(buf, done, buf.length - done, from + done);
      if (bytesRead === 0) throw Object.assign(new Error(`${path} ended at ${from + done}, before ${to}`), { code: 'EIO' });
      done += bytesRead;
    }
    return buf;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Where the whole records of a journal end, scanning from `from` (async, in small reads). */
async function wholeRecordsEnd(name: string, path: string, from: number): Promise<number> {
  const file = await openCacheFile(name, path);
  if (file === undefined) return from;
  try {
    return (await parseFile(name, path, file, journalRecordSteps(file.size, from, () => undefined), from, 128 * 1024)).end;
  } catch (err) {
    if (err instanceof FormatError) throw new CorruptCacheFileError(name, path, `not compacted: ${err.message}`);
    throw err;
  } finally {
    await file.handle.close().catch(() => undefined);
  }
}

/** Writes `buffers` at `position`, all of them (short writes are resumed); returns the end. */
async function writeAt(handle: fs.promises.FileHandle, buffers: readonly Buffer[], position: number): Promise<number> {
  for (const buf of buffers) {
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
      if (!(bytesWritten > 0)) throw Object.assign(new Error(`a write of ${buf.length - done} bytes wrote nothing`), { code: 'EIO' });
      done += bytesWritten;
    }
    position += buf.length;
  }
  return position;
}

/** The error naming the entry (or deleted key) of a record's part that v8 refused. */
function unserializableInPart(name: string, err: unknown): Error {
  const part = (err as { failedPart?: { sets: unknown[]; deletes: unknown[] } } | null)?.failedPart;
  if (part === undefined) return err as Error;
  return unserializable(name, { sets: part.sets, deletes: part.deletes, generation: undefined }, err);
}

function unserializable(name: string, record: JournalRecord, err: unknown): CacheSerializationError {
  const culprit = findUnserializable(name, record.sets, err);
  if (culprit.hasKey) return culprit;
  for (const key of record.deletes) {
    try {
      encodePayload([key]);
    } catch (keyErr) {
      return new CacheSerializationError(name, key, true, { cause: keyErr });
    }
  }
  return culprit;
}

/** A record's bytes, or the error naming the entry v8 refused. */
function encodeRecord(name: string, record: JournalRecord): Buffer {
  try {
    return encodeJournalRecord(record);
  } catch (err) {
    throw unserializable(name, record, err);
  }
}

function quarantineIfPresent(name: string, path: string): void {
  if (fs.existsSync(path)) quarantine(name, path);
}

/** @internal */
export function wrapWriteError(name: string, path: string, err: unknown): Error {
  if (err instanceof DepcacheError) return err;
  return new CacheIOError(name, path, 'write', err);
}

/**
 * A snapshot as the bytes of a cache file, piece by piece (header, each frame's prefix and
 * payload, trailer), encoding one frame per step, so a caller can yield between steps.
 * @throws {CacheSerializationError} naming the entry v8 refused
 */
export function* encodeCacheFile(
  name: string,
  snapshot: EntrySnapshot,
  baseId: string,
  frameEntries: number,
  progress?: ProgressReporter,
): Generator<Buffer> {
  yield encodeHeader({ name, savedAt: Date.now(), entries: snapshot.size, generation: snapshot.generation, baseId });
  let frames = 0;
  let written = 0;
  for (;;) {
    // A packed array for every frame (v8 writes an array of a holey kind as a sparse one, an
    // index before every element: 15% slower to write and to read, and bigger). Never
    // `new Array(n)`, which is holey even once every element is set.
    const pairs = packedFrame(2 * frameEntries);
    const n = snapshot.fill(pairs, frameEntries);
    if (n === 0) break;
    let payload: Buffer;
    try {
      payload = encodePayload(pairs);
    } catch (err) {
      throw findUnserializable(name, pairs, err);
    }
    yield encodeFrameHeader(payload);
    yield payload;
    frames++;
    written += n;
    progress?.update(written);
    if (n < frameEntries) break;
  }
  progress?.finish();
  yield encodeTrailer(frames, written);
}

/** Names the entry that v8 refused, by serializing the frame's keys and values one at a time. */
function findUnserializable(name: string, pairs: unknown[], cause: unknown): CacheSerializationError {
  for (let i = 0; i < pairs.length; i += 2) {
    try {
      encodePayload([pairs[i], pairs[i + 1]]);
    } catch (err) {
      return new CacheSerializationError(name, pairs[i], true, { cause: err });
    }
  }
  return new CacheSerializationError(name, undefined, false, { cause });
}
