import * as fs from 'node:fs';
import { join } from 'node:path';
import type { CorruptCacheFileError } from '../errors';
import { FormatError } from './file-format';
import { cacheFileName } from './file-name';
import {
  type CorruptFilePolicy,
  DecodedEntries,
  handleDecodeFailure,
  readCacheFile,
  readCacheFileSync,
  removeCacheFile,
  wrapWriteError,
} from './file-store';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-file';
import type { SafeDirectory } from './safe-directory';
import type { EntrySnapshot } from './snapshot';

/** A human-readable file format: whole-file text, encoded and decoded in one go. */
export interface TextFormat {
  /** File name extension, with the dot. */
  readonly extension: string;
  /** `generation`: the cache's (see `CacheMap.generation`), kept by formats that can. */
  encode(name: string, entries: Array<[unknown, unknown]>, generation?: string): string;
  /** @throws {FormatError} when the text is damaged or not of this format */
  decode(name: string, text: string): { entries: Array<[unknown, unknown]>; generation?: string };
}

/**
 * Reads and writes caches as text files (JSON, CSV) in one directory, with the v8 store's rules:
 * atomic writes, damaged files moved aside and reported. Text stores write in one piece (no
 * frames, no yielding): they are meant for caches small enough to read by eye.
 */
export class TextFileStore {
  constructor(
    readonly place: SafeDirectory,
    readonly format: TextFormat,
  ) {}

  get directory(): string {
    return this.place.path;
  }

  pathFor(name: string): string {
    return join(this.directory, cacheFileName(name, this.format.extension));
  }

  async read(
    name: string,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): Promise<DecodedEntries | undefined> {
    const path = this.pathFor(name);
    if (!this.place.checkForRead()) return undefined;
    const buf = await readCacheFile(name, path);
    return buf === undefined ? undefined : this.#decode(name, path, buf.toString('utf8'), onCorrupt, report);
  }

  readSync(
    name: string,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): DecodedEntries | undefined {
    const path = this.pathFor(name);
    if (!this.place.checkForRead()) return undefined;
    const buf = readCacheFileSync(name, path);
    return buf === undefined ? undefined : this.#decode(name, path, buf.toString('utf8'), onCorrupt, report);
  }

  async write(name: string, snapshot: EntrySnapshot): Promise<number> {
    const path = this.pathFor(name);
    const data = Buffer.from(this.format.encode(name, drain(snapshot), snapshot.generation), 'utf8');
    try {
      this.place.prepareForWrite();
      await writeFileAtomic(path, async (opened) => {
        await (await opened).writeFile(data);
      }, this.place.fileMode);
    } catch (err) {
      throw wrapWriteError(name, path, err);
    }
    return data.length;
  }

  writeSync(name: string, snapshot: EntrySnapshot): number {
    const path = this.pathFor(name);
    const data = Buffer.from(this.format.encode(name, drain(snapshot), snapshot.generation), 'utf8');
    try {
      this.place.prepareForWrite();
      writeFileAtomicSync(path, (fd) => fs.writeFileSync(fd, data), this.place.fileMode);
    } catch (err) {
      throw wrapWriteError(name, path, err);
    }
    return data.length;
  }

  remove(name: string): Promise<void> {
    return removeCacheFile(name, this.pathFor(name));
  }

  #decode(
    name: string,
    path: string,
    text: string,
    onCorrupt: CorruptFilePolicy,
    report: (err: CorruptCacheFileError) => void,
  ): DecodedEntries | undefined {
    try {
      const { entries, generation } = this.format.decode(name, text);
      return new DecodedEntries([entries.flat()], { name, savedAt: 0, entries: entries.length, generation });
    } catch (err) {
      return handleDecodeFailure(err, name, path, onCorrupt, report);
    }
  }
}

/** All entries of a snapshot, as pairs. */
function drain(snapshot: EntrySnapshot): Array<[unknown, unknown]> {
  const out: Array<[unknown, unknown]> = [];
  const batch: unknown[] = [];
  for (;;) {
    batch.length = 0;
    const n = snapshot.fill(batch, 1024);
    for (let i = 0; i < n; i++) out.push([batch[2 * i], batch[2 * i + 1]]);
    if (n < 1024) return out;
  }
}

export { FormatError };
