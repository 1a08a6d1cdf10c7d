import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { CacheIOError } from '../errors';

// Never follow a link and never block on open: a FIFO planted as `users.v8` must be refused at
// once, not wait for a writer. (Windows has neither flag; there the fstat check below remains.)
const READ_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0);
const CHUNK_BYTES = 1024 * 1024;

/** An open cache file and its size when it was opened: no read goes past that size. */
export interface OpenedFile<H> {
  readonly handle: H;
  readonly size: number;
}

/**
 * Opens a cache file for reading. Undefined when there is none; a CacheIOError, at once, when
 * the path is anything but a regular file (a link, a FIFO, a device, a directory).
 */
export async function openCacheFile(name: string, path: string): Promise<OpenedFile<FileHandle> | undefined> {
  let handle: FileHandle;
  try {
    handle = await fs.promises.open(path, READ_FLAGS);
  } catch (err) {
    return openFailed(name, path, err);
  }
  try {
    const stats = await handle.stat();
    assertRegular(name, path, stats);
    return { handle, size: stats.size };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err instanceof CacheIOError ? err : new CacheIOError(name, path, 'read', err);
  }
}

/** The synchronous twin of {@link openCacheFile}. */
export function openCacheFileSync(name: string, path: string): OpenedFile<number> | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, READ_FLAGS);
  } catch (err) {
    return openFailed(name, path, err);
  }
  try {
    const stats = fs.fstatSync(fd);
    assertRegular(name, path, stats);
    return { handle: fd, size: stats.size };
  } catch (err) {
    fs.closeSync(fd);
    throw err instanceof CacheIOError ? err : new CacheIOError(name, path, 'read', err);
  }
}

/**
 * Feeds a pull parser (it yields how many bytes it wants) from a file, through 1 MiB reads, so
 * a file of any size is read with one chunk and one frame in memory at a time. With `sliceMs`,
 * a turn of the event loop is let in between two steps once a stretch of work passed it: a
 * chunk's frames are decoded between two reads, tens of ms of work for 1 MiB of small entries.
 */
export async function parseFile<T>(
  name: string,
  path: string,
  file: OpenedFile<FileHandle>,
  steps: Generator<number, T, Buffer>,
  start = 0,
  chunkBytes = CHUNK_BYTES,
  sliceMs = Number.POSITIVE_INFINITY,
): Promise<T> {
  const chunks = new Chunks(file.size, start, chunkBytes);
  const sliced = sliceMs !== Number.POSITIVE_INFINITY;
  let sliceStart = performance.now();
  let step = steps.next();
  while (!step.done) {
    if (sliced && performance.now() - sliceStart > sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    let bytes = chunks.take(step.value);
    if (bytes === undefined) {
      const { buffer, offset, length, position } = chunks.refill(step.value);
      let read = 0;
      try {
        while (read < length) {
          const { bytesRead } = await file.handle.read(buffer, offset + read, length - read, position + read);
          if (bytesRead === 0) break;
          read += bytesRead;
        }
      } catch (err) {
        throw new CacheIOError(name, path, 'read', err);
      }
      chunks.filled(read, length);
      bytes = chunks.take(step.value) as Buffer;
    }
    step = steps.next(bytes);
  }
  return step.value;
}

/** The synchronous twin of {@link parseFile}. */
export function parseFileSync<T>(
  name: string,
  path: string,
  file: OpenedFile<number>,
  steps: Generator<number, T, Buffer>,
  start = 0,
): T {
  const chunks = new Chunks(file.size, start, CHUNK_BYTES);
  let step = steps.next();
  while (!step.done) {
    let bytes = chunks.take(step.value);
    if (bytes === undefined) {
      const { buffer, offset, length, position } = chunks.refill(step.value);
      let read = 0;
      try {
        while (read < length) {
          const n = fs.readSync(file.handle, buffer, offset + read, length - read, position + read);
          if (n === 0) break;
          read += n;
        }
      } catch (err) {
        throw new CacheIOError(name, path, 'read', err);
      }
      chunks.filled(read, length);
      bytes = chunks.take(step.value) as Buffer;
    }
    step = steps.next(bytes);
  }
  return step.value;
}

/** A parser that asks for the whole file at once (text formats, small by design). */
export function* wholeFile(size: number): Generator<number, Buffer, Buffer> {
  return size === 0 ? Buffer.alloc(0) : yield size;
}

/** Which bytes are buffered, and what to read next; the drivers above only do the reads. */
class Chunks {
  #chunk = Buffer.alloc(0);
  #at = 0;
  #position: number; // file offset just past the chunk

  /** `start`: the file offset the parser's first byte is read from. */
  constructor(
    private size: number,
    start: number,
    private readonly chunkBytes: number,
  ) {
    this.#position = start;
  }

  /** `want` bytes from the buffer, or undefined when a read must come first (fewer at the end of the file). */
  take(want: number): Buffer | undefined {
    if (this.#chunk.length - this.#at < want && this.#position < this.size) return undefined;
    const out = this.#chunk.subarray(this.#at, this.#at + want);
    this.#at += out.length;
    return out;
  }

  /** A new buffer holding the unread rest, and the read that completes it. */
  refill(want: number): { buffer: Buffer; offset: number; length: number; position: number } {
    const rest = this.#chunk.subarray(this.#at);
    const length = Math.min(Math.max(want, this.chunkBytes) - rest.length, this.size - this.#position);
    const buffer = Buffer.allocUnsafe(rest.length + length);
    rest.copy(buffer, 0);
    this.#chunk = buffer;
    this.#at = 0;
    return { buffer, offset: rest.length, length, position: this.#position };
  }

  /** The read brought `read` of `asked` bytes; fewer means the file ended sooner than its size said. */
  filled(read: number, asked: number): void {
    this.#position += read;
    if (read < asked) {
      this.#chunk = this.#chunk.subarray(0, this.#chunk.length - (asked - read));
      this.size = this.#position;
    }
  }
}

function openFailed(name: string, path: string, err: unknown): undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return undefined;
  if (code === 'ELOOP') throw notRegular(name, path, 'a symbolic link');
  throw new CacheIOError(name, path, 'read', err);
}

function assertRegular(name: string, path: string, stats: fs.Stats): void {
  if (stats.isFile()) return;
  const kind = stats.isDirectory()
    ? 'a directory'
    : stats.isFIFO()
      ? 'a FIFO'
      : stats.isCharacterDevice() || stats.isBlockDevice()
        ? 'a device'
        : stats.isSocket()
          ? 'a socket'
          : 'not a file';
  throw notRegular(name, path, kind);
}

function notRegular(name: string, path: string, kind: string): CacheIOError {
  return new CacheIOError(name, path, 'read', new Error(`not a regular file (${kind}); move it out of the cache directory`));
}

/**
 * Hands a pull parser's requests from a file read forward from `start`, asynchronously, in reads
 * of about `chunkBytes` (a request larger than that is read whole): for a driver that does work
 * of its own between requests, where {@link parseFile} runs a parser through in one go.
 */
export class SequentialReader {
  #buf = Buffer.alloc(0);
  #at = 0;
  #position: number;

  constructor(
    readonly name: string,
    readonly path: string,
    readonly file: OpenedFile<FileHandle>,
    start: number,
    readonly chunkBytes: number,
  ) {
    this.#position = start;
  }

  /** The next `n` bytes (fewer only at the end of the file). */
  async take(n: number): Promise<Buffer> {
    if (this.#buf.length - this.#at < n) await this.#refill(n);
    const out = this.#buf.subarray(this.#at, Math.min(this.#buf.length, this.#at + n));
    this.#at += out.length;
    return out;
  }

  async #refill(n: number): Promise<void> {
    const rest = this.#buf.subarray(this.#at);
    const want = Math.min(Math.max(n - rest.length, this.chunkBytes), Math.max(0, this.file.size - this.#position));
    // A new buffer every time: what was handed out before stays intact.
    const next = Buffer.allocUnsafe(rest.length + want);
    rest.copy(next, 0);
    let read = 0;
    try {
      while (read < want) {
        const { bytesRead } = await this.file.handle.read(next, rest.length + read, want - read, this.#position + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
    } catch (err) {
      throw new CacheIOError(this.name, this.path, 'read', err);
    }
    this.#position += read;
    this.#buf = next.subarray(0, rest.length + read);
    this.#at = 0;
  }
}
