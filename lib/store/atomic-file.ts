import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { FileHandle } from 'node:fs/promises';

/** Cache files are readable by their owner only, unless a directory is shared on purpose. */
export const PRIVATE_FILE_MODE = 0o600;

const TEMP_PATTERN = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/** A temp file beside `target`, named with this PID so a later process can tell it is stale. */
export function tempPathFor(target: string): string {
  const suffix = crypto().randomBytes(4).toString('hex');
  return join(dirname(target), `.${basename(target)}.${process.pid}.${suffix}.tmp`);
}

/**
 * Writes `target` atomically: everything goes to a temp file in the same directory, which is
 * fsynced, renamed over the target, and the directory fsynced, so a crash at any moment leaves
 * the old file or the new one, never a mix. The temp file is removed on failure.
 *
 * `write` gets the temp file's handle as a Promise, so it can encode its first bytes while the
 * file is being created: a create right after a previous save's rename can wait several ms
 * for the filesystem journal (measured on ext4), and that wait then overlaps CPU work.
 */
export async function writeFileAtomic(
  target: string,
  write: (opened: Promise<FileHandle>) => Promise<void>,
  mode: number = PRIVATE_FILE_MODE,
): Promise<void> {
  const temp = await writeTempFile(target, write, mode);
  try {
    await fs.promises.rename(temp, target);
  } catch (err) {
    await fs.promises.unlink(temp).catch(() => undefined);
    throw err;
  }
  await syncDirectory(dirname(target));
}

/**
 * {@link writeFileAtomic} in two halves, for a writer that must check under a lock whether its
 * file still applies before it replaces the target: the temp file written and fsynced (removed
 * on failure), resolving its path; {@link commitTempFile} renames it over the target.
 */
export async function writeTempFile(
  target: string,
  write: (opened: Promise<FileHandle>) => Promise<void>,
  mode: number = PRIVATE_FILE_MODE,
): Promise<string> {
  const temp = tempPathFor(target);
  const opened = fs.promises.open(temp, 'wx', mode);
  opened.catch(() => undefined); // awaited below; a failed open must not be an unhandled rejection
  let closed = false;
  try {
    await write(opened);
    const handle = await opened;
    await handle.sync();
    closed = true;
    await handle.close();
    return temp;
  } catch (err) {
    if (!closed) await (await opened.catch(() => undefined))?.close().catch(() => undefined);
    await fs.promises.unlink(temp).catch(() => undefined);
    throw err;
  }
}

/** Renames a temp file from {@link writeTempFile} over `target`, durably (the directory fsynced). */
export async function commitTempFile(temp: string, target: string): Promise<void> {
  await fs.promises.rename(temp, target);
  await syncDirectory(dirname(target));
}

/** The synchronous twin of {@link writeFileAtomic}, for saves at process exit. */
export function writeFileAtomicSync(
  target: string,
  write: (fd: number) => void,
  mode: number = PRIVATE_FILE_MODE,
): void {
  const temp = tempPathFor(target);
  let fd: number | undefined;
  let renamed = false;
  try {
    fd = fs.openSync(temp, 'wx', mode);
    write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(temp, target);
    renamed = true;
    syncDirectorySync(dirname(target));
  } finally {
    if (fd !== undefined) tryIgnore(() => fs.closeSync(fd as number));
    if (!renamed) tryIgnore(() => fs.unlinkSync(temp));
  }
}

/** The part of a file handle {@link writeAll} needs; tests pass one that writes short. */
export interface VectorWriter {
  writev(buffers: Buffer[]): Promise<{ bytesWritten: number }>;
}

// writev takes at most IOV_MAX (1024 on Linux) buffers per call.
const IOV_SLICE = 512;

/**
 * Writes every buffer in order, all of it. A write may take fewer bytes than it was given (a
 * disk filling up, a signal): the rest is written again until everything is on disk or a write
 * fails (ENOSPC then surfaces as an error instead of a silently truncated file).
 */
export async function writeAll(handle: VectorWriter, buffers: readonly Buffer[]): Promise<void> {
  const queue = { buffers: [...buffers], index: 0 };
  while (queue.index < queue.buffers.length) {
    const slice = queue.buffers.slice(queue.index, queue.index + IOV_SLICE);
    const { bytesWritten } = await handle.writev(slice);
    advance(queue, bytesWritten, slice);
  }
}

/** The synchronous twin of {@link writeAll}; `writev` is injectable for tests. */
export function writeAllSync(
  fd: number,
  buffers: readonly Buffer[],
  writev: (fd: number, buffers: Buffer[]) => number = fs.writevSync,
): void {
  const queue = { buffers: [...buffers], index: 0 };
  while (queue.index < queue.buffers.length) {
    const slice = queue.buffers.slice(queue.index, queue.index + IOV_SLICE);
    advance(queue, writev(fd, slice), slice);
  }
}

/** Moves past `written` bytes of `slice` (the queue's next buffers), keeping the unwritten rest. */
function advance(queue: { buffers: Buffer[]; index: number }, written: number, slice: Buffer[]): void {
  const wanted = slice.reduce((n, b) => n + b.length, 0);
  if (wanted > 0 && !(written > 0)) {
    // No progress and no error: retrying could spin forever; report it as an I/O failure.
    throw Object.assign(new Error(`a write of ${wanted} bytes wrote nothing`), { code: 'EIO' });
  }
  let left = written;
  while (queue.index < queue.buffers.length) {
    const buf = queue.buffers[queue.index] as Buffer;
    if (left < buf.length) {
      if (left > 0) queue.buffers[queue.index] = buf.subarray(left);
      return;
    }
    left -= buf.length;
    queue.index++;
  }
}

/**
 * Removes temp files in `dir` left by processes that no longer run (a crash or `kill -9`
 * mid-save). Files of live processes, including this one, are left alone.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = TEMP_PATTERN.exec(name);
    if (!match) continue;
    const pid = Number(match[2]);
    if (pid === process.pid || isProcessAlive(pid)) continue;
    const path = join(dir, name);
    try {
      await fs.promises.unlink(path);
      removed.push(path);
    } catch {
      // Another process may have cleaned it first; nothing is lost either way.
    }
  }
  return removed;
}

/** True when `name` is a temp file of ours (of any process). */
export function isTempFileName(name: string): boolean {
  return TEMP_PATTERN.test(name);
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the rename itself durable. Some platforms cannot open a directory; the rename is
  // still atomic there, only its durability on power loss is up to the OS.
  let handle: FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch {
    // see above
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function syncDirectorySync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // see syncDirectory
  } finally {
    if (fd !== undefined) tryIgnore(() => fs.closeSync(fd as number));
  }
}

function tryIgnore(fn: () => void): void {
  try {
    fn();
  } catch {
    // best-effort cleanup
  }
}

/** node:crypto, loaded at first use: it is a tenth of what `require('depcache')` costs otherwise. */
function crypto(): typeof import('node:crypto') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:crypto') as typeof import('node:crypto');
}
