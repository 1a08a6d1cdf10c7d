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
  FormatError,
  decodeSteps,
  encodeFrameHeader,
  encodeHeader,
  encodePayload,
  encodeTrailer,
} from './file-format';
import { cacheFileName } from './file-name';
import type { SafeDirectory } from './safe-directory';
import { openCacheFile, openCacheFileSync, parseFile, parseFileSync, wholeFile } from './file-reader';
import type { EntrySnapshot } from './snapshot';
import {
  removeStaleTempFiles,
  writeAll,
  writeAllSync,
  writeFileAtomic,
  writeFileAtomicSync,
} from './atomic-file';

/** What to do with a cache file that fails its checks. */
export type CorruptFilePolicy = 'quarantine' | 'throw';

/** Entries decoded from a file, batch by batch, each a flat `[k0, v0, k1, v1, ...]` array. */
export class DecodedEntries implements Iterable<[unknown, unknown]> {
  constructor(
    readonly batches: readonly unknown[][],
    readonly meta: CacheFileMeta,
  ) {}

  get size(): number {
    return this.meta.entries;
  }

  /** Adds every entry to `map` with Map's own `set`, bypassing any subclass bookkeeping. */
  fillInto(map: Map<unknown, unknown>): void {
    const set = Map.prototype.set;
    for (const pairs of this.batches) {
      for (let i = 0; i < pairs.length; i += 2) set.call(map, pairs[i], pairs[i + 1]);
    }
  }

  *[Symbol.iterator](): Iterator<[unknown, unknown]> {
    for (const pairs of this.batches) {
      for (let i = 0; i < pairs.length; i += 2) yield [pairs[i], pairs[i + 1]];
    }
  }
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

/** Options of a {@link FileStore}. */
export interface FileStoreOptions {
  /** Entries per CRC-checked frame. @default 2048 */
  readonly frameEntries?: number;
  /** Longest stretch of synchronous work in an async save before it yields, in ms. @default 4 */
  readonly sliceMs?: number;
}

const FLUSH_BYTES = 4 * 1024 * 1024;

/**
 * Reads and writes v8 cache files in one directory. Cold path: clarity over micro-speed, except
 * in the frame loop, which is what the save benchmarks measure.
 */
export class FileStore implements CacheFileStore {
  readonly #frameEntries: number;
  readonly #sliceMs: number;
  #directoryReady: Promise<void> | undefined;

  /** `place`: the checked directory the files live in. */
  constructor(
    readonly place: SafeDirectory,
    options: FileStoreOptions = {},
  ) {
    const { frameEntries = 2048, sliceMs = 4 } = options;
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
   * Reads a cache file. Resolves `undefined` when there is none. A damaged file is moved aside
   * and reported through `report`, then treated as absent, unless `onCorrupt` is `'throw'`.
   * A file from an unknown format version always throws and is never moved.
   */
  async read(
    name: string,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): Promise<DecodedEntries | undefined> {
    const path = this.pathFor(name);
    if (!this.place.checkForRead()) return undefined;
    const file = await openCacheFile(name, path);
    if (file === undefined) return undefined;
    const batches: unknown[][] = [];
    let decoded: CacheFileMeta | FormatError;
    try {
      decoded = await parseFile(name, path, file, decodeSteps(file.size, (pairs) => batches.push(pairs)));
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      decoded = err;
    } finally {
      await file.handle.close().catch(() => undefined); // closed before a quarantine moves it
    }
    return this.#decoded(name, path, decoded, batches, onCorrupt, report);
  }

  /** The synchronous twin of {@link read}, for the first call of a sync memoized function. */
  readSync(
    name: string,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): DecodedEntries | undefined {
    const path = this.pathFor(name);
    if (!this.place.checkForRead()) return undefined;
    const file = openCacheFileSync(name, path);
    if (file === undefined) return undefined;
    const batches: unknown[][] = [];
    let decoded: CacheFileMeta | FormatError;
    try {
      decoded = parseFileSync(name, path, file, decodeSteps(file.size, (pairs) => batches.push(pairs)));
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      decoded = err;
    } finally {
      fs.closeSync(file.handle);
    }
    return this.#decoded(name, path, decoded, batches, onCorrupt, report);
  }

  /** Writes a snapshot atomically, yielding to the event loop every `sliceMs` of work. */
  async write(name: string, snapshot: EntrySnapshot): Promise<number> {
    const path = this.pathFor(name);
    await this.#prepareDirectory(name);
    let bytes = 0;
    try {
      await writeFileAtomic(path, async (opened) => {
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        let sliceStart = performance.now();
        for (const buf of this.#encode(name, snapshot)) {
          pending.push(buf);
          pendingBytes += buf.length;
          if (pendingBytes >= FLUSH_BYTES) {
            bytes += pendingBytes;
            const batch = pending;
            pending = [];
            pendingBytes = 0;
            await writeAll(await opened, batch);
            sliceStart = performance.now();
          } else if (performance.now() - sliceStart > this.#sliceMs) {
            await new Promise<void>((resolve) => setImmediate(resolve));
            sliceStart = performance.now();
          }
        }
        bytes += pendingBytes;
        await writeAll(await opened, pending);
      }, this.place.fileMode);
    } catch (err) {
      throw wrapWriteError(name, path, err);
    }
    return bytes;
  }

  /** Writes a snapshot atomically without ever yielding: the exit path, where nothing async runs. */
  writeSync(name: string, snapshot: EntrySnapshot): number {
    const path = this.pathFor(name);
    let bytes = 0;
    try {
      this.place.prepareForWrite();
      writeFileAtomicSync(path, (fd) => {
        const buffers = Array.from(this.#encode(name, snapshot));
        for (const b of buffers) bytes += b.length;
        writeAllSync(fd, buffers);
      }, this.place.fileMode);
    } catch (err) {
      throw wrapWriteError(name, path, err);
    }
    return bytes;
  }

  /** Removes the cache file; a missing file is not an error. */
  remove(name: string): Promise<void> {
    return removeCacheFile(name, this.pathFor(name));
  }

  /** Size of the cache file in bytes, or undefined when there is none. */
  async fileSize(name: string): Promise<number | undefined> {
    try {
      return (await fs.promises.stat(this.pathFor(name))).size;
    } catch {
      return undefined;
    }
  }

  *#encode(name: string, snapshot: EntrySnapshot): Generator<Buffer> {
    yield encodeHeader({ name, savedAt: Date.now(), entries: snapshot.size, generation: snapshot.generation });
    const per = this.#frameEntries;
    let frames = 0;
    let written = 0;
    for (;;) {
      // A new array filled by push for every frame, never one written by index: v8 writes an
      // array of a holey kind as a sparse one, an index before every element (15% slower to
      // write and to read, and bigger). Arrays written by index came out holey once the process
      // had run a while (seen in the test suite), even with no hole in them.
      const pairs: unknown[] = [];
      const n = snapshot.fill(pairs, per);
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
      if (n < per) break;
    }
    yield encodeTrailer(frames, written);
  }

  #decoded(
    name: string,
    path: string,
    decoded: CacheFileMeta | FormatError,
    batches: unknown[][],
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): DecodedEntries | undefined {
    let failure = decoded instanceof FormatError ? decoded : undefined;
    if (!(decoded instanceof FormatError) && decoded.name !== name) {
      failure = new FormatError(`file holds cache ${JSON.stringify(decoded.name)}, not this one`);
    }
    if (failure !== undefined) return handleDecodeFailure(failure, name, path, onCorrupt, report);
    return new DecodedEntries(batches, decoded as CacheFileMeta);
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

/** @internal */
export function wrapWriteError(name: string, path: string, err: unknown): Error {
  if (err instanceof DepcacheError) return err;
  return new CacheIOError(name, path, 'write', err);
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
