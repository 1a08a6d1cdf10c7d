import * as fs from 'node:fs';
import { join } from 'node:path';
import { isTempFileName, removeStaleTempFiles } from '../store/atomic-file';
import { csvFormat } from '../store/csv-format';
import { CacheIOError } from '../errors';
import { FormatError, headerSteps } from '../store/file-format';
import { openCacheFileSync, parseFileSync } from '../store/file-reader';
import { DecodedEntries, QUARANTINED_FILE, readCacheFileSync, readCacheFilesSync } from '../store/file-store';
import { JOURNAL_SUFFIX } from '../store/journal';
import { cacheFileName } from '../store/file-name';
import { JSON_FORMAT } from '../store/json-format';
import { MANIFEST_FILE, type Manifest, readManifest } from '../store/manifest';
import { EXPIRES_FIELD, isExpiryEnvelope } from '../expiry/envelope';

/** A failure the CLI reports with its own exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** A bad argument or option value: reported as one line and a pointer to the command's help. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

/**
 * The CLI's exit codes (docs/cli.md lists them; `depcache --help` too). `io` is a file that
 * cannot be read; `writeFailed` one that cannot be written or removed (a full disk, a read-only
 * file system, no permission): a different fix, so a different code.
 */
export const EXIT = { ok: 0, verifyFailed: 1, usage: 2, unknownCache: 3, corrupt: 4, io: 5, unknownDependents: 6, writeFailed: 7 } as const;

/** One cache file as `list` shows it. */
export interface CacheFileInfo {
  readonly name: string;
  readonly file: string;
  readonly format: 'v8' | 'json' | 'csv';
  readonly entries: number | undefined;
  readonly bytes: number;
  readonly savedAt: string | undefined;
  readonly verifies: boolean;
  readonly problem: string | undefined;
  /** Records in the journal beside a v8 file (saves not yet compacted into it). */
  readonly journalRecords: number;
  /** The journal's last record was cut short by a crash: it is dropped on load. */
  readonly journalTorn: boolean;
  /** Entries whose expiry time has passed (counted in `entries`; a load drops them). */
  readonly expired: number;
}

/** A file of the cache directory that is no cache, as `list` shows it and `clean` removes it. */
export interface Leftover {
  readonly file: string;
  /** temp: a save in progress or left by a crash; journal: one without its cache file; quarantined: a damaged file moved aside. */
  readonly kind: 'temp' | 'journal' | 'quarantined';
}

/** A cache's entries as saved: values unwrapped, with each one's expiry time (undefined: never). */
export interface SavedEntries {
  readonly entries: Array<[unknown, unknown]>;
  readonly expiresAt: Array<number | undefined>;
}

const FORMATS = [
  ['.v8', 'v8'],
  ['.json', 'json'],
  ['.csv', 'csv'],
] as const;

/** Reads cache files of a manager's directory without loading any user code. */
export class CacheDirectory {
  constructor(readonly path: string) {
    if (!fs.existsSync(path) || !fs.statSync(path).isDirectory()) {
      throw new CliError(`no cache directory at ${path}`, EXIT.usage);
    }
  }

  /** The manager's manifest; undefined when there is none. @throws {CliError} 4 when it is damaged */
  get manifest(): Manifest | undefined {
    try {
      return readManifest(this.path);
    } catch (err) {
      if (err instanceof FormatError || err instanceof CacheIOError) {
        throw new CliError(`${join(this.path, MANIFEST_FILE)}: ${err instanceof FormatError ? err.message : errorText(err)}`, EXIT.corrupt);
      }
      throw err;
    }
  }

  /** Every cache file, decoded and checked; `onFile` after each. */
  list(onFile: () => void = () => undefined): CacheFileInfo[] {
    const out: CacheFileInfo[] = [];
    for (const [file, format] of this.#files()) {
      out.push(this.#inspect(file, format));
      onFile();
    }
    return out;
  }

  /** How many cache files there are. */
  fileCount(): number {
    return this.#files().length;
  }

  #files(): Array<[string, CacheFileInfo['format']]> {
    const out: Array<[string, CacheFileInfo['format']]> = [];
    for (const file of fs.readdirSync(this.path).sort()) {
      const format = FORMATS.find(([ext]) => file.endsWith(ext))?.[1];
      if (format && !file.startsWith('.')) out.push([file, format]);
    }
    return out;
  }

  /** The file of a cache, by its real name. @throws {CliError} 3 when there is none */
  locate(name: string): CacheFileInfo {
    for (const [ext, format] of FORMATS) {
      const file = cacheFileName(name, ext);
      if (exists(join(this.path, file))) return this.#inspect(file, format);
    }
    throw new CliError(`no cache named ${JSON.stringify(name)} in ${this.path}`, EXIT.unknownCache);
  }

  /** The entries of a cache file. @throws {CliError} 3 when missing, 4 when corrupt */
  read(name: string): { info: CacheFileInfo } & SavedEntries {
    const info = this.locate(name);
    if (!info.verifies) {
      const unreadable = info.problem?.startsWith('not a regular file') === true;
      throw new CliError(
        `${name}: the file ${unreadable ? 'cannot be read' : 'is corrupt'} (${info.problem}): ${join(this.path, info.file)}`,
        unreadable ? EXIT.io : EXIT.corrupt,
      );
    }
    return { info, ...splitExpiry(this.#decode(info.file, info.format).entries) };
  }

  /**
   * Removes what no cache can use: temp files of dead processes and journals without their cache
   * file (nothing can apply them: a journal holds changes to a file, and a save that finds no
   * file writes it whole). Quarantined files only with `corrupt`: they are kept for a person.
   */
  async clean(corrupt: boolean): Promise<string[]> {
    const removed = await removeStaleTempFiles(this.path);
    for (const { file, kind } of this.leftovers()) {
      // Asked again just before: a save may have written the file since the listing.
      const orphan = kind === 'journal' && !exists(join(this.path, file.slice(0, -JOURNAL_SUFFIX.length)));
      if (orphan || (corrupt && kind === 'quarantined')) {
        removeIfThere(join(this.path, file));
        removed.push(join(this.path, file));
      }
    }
    return removed.sort();
  }

  /** Files that are no cache: temp files, journals without their cache file, quarantined files. */
  leftovers(): Leftover[] {
    const names = fs.readdirSync(this.path);
    const present = new Set(names);
    const out: Leftover[] = [];
    for (const file of names.sort()) {
      if (isTempFileName(file)) out.push({ file, kind: 'temp' });
      else if (QUARANTINED_FILE.test(file)) out.push({ file, kind: 'quarantined' });
      else if (file.endsWith(`.v8${JOURNAL_SUFFIX}`) && !present.has(file.slice(0, -JOURNAL_SUFFIX.length))) {
        out.push({ file, kind: 'journal' });
      }
    }
    return out;
  }

  /** Removes a cache's file and, for v8, its journal (a journal left alone would be an orphan). */
  remove(info: CacheFileInfo): string[] {
    const paths = [join(this.path, info.file)];
    if (info.format === 'v8') paths.push(join(this.path, info.file + JOURNAL_SUFFIX));
    return paths.filter(removeIfThere);
  }

  /**
   * Deletes the saved content of `name` and, through the manifest's edges, of every cache that
   * depends on it, transitively (each once): what `invalidateCache` would cascade to. Refuses,
   * deleting nothing, when the manifest cannot tell the dependents (none, damaged, or silent on
   * `name`), unless `only` says to delete `name` alone.
   * @throws {CliError} 3 for an unknown cache, 6 when the dependents cannot be known
   */
  invalidate(name: string, only = false): Array<{ cache: string; file: string | undefined }> {
    let manifest: Manifest | undefined;
    let unknown: string | undefined;
    try {
      manifest = this.manifest;
      if (manifest === undefined) unknown = `there is no manifest in ${this.path}`;
      else if (manifest.caches[name] === undefined && manifest.dependents[name] === undefined) {
        unknown = `the manifest in ${this.path} does not list ${JSON.stringify(name)}`;
      }
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      unknown = `the manifest is damaged (${err.message})`;
    }
    if (manifest?.caches[name] === undefined && !this.#exists(name)) {
      throw new CliError(`no cache named ${JSON.stringify(name)} in ${this.path}`, EXIT.unknownCache);
    }
    if (unknown !== undefined && !only) {
      throw new CliError(
        `cannot know which caches depend on ${JSON.stringify(name)}: ${unknown}. Nothing was deleted; ` +
          `rerun with --only to delete ${JSON.stringify(name)} alone, or run the pipeline once so its manager writes the manifest`,
        EXIT.unknownDependents,
      );
    }
    const order: string[] = [];
    const seen = new Set<string>([name]);
    const queue = [name];
    while (queue.length > 0) {
      const current = queue.shift() as string;
      order.push(current);
      if (only) break;
      for (const child of manifest?.dependents[current] ?? []) {
        if (!seen.has(child)) {
          seen.add(child);
          queue.push(child);
        }
      }
    }
    return order.map((cache) => {
      const file = manifest?.caches[cache]?.file ?? this.#existingFile(cache);
      if (file && exists(join(this.path, file))) {
        removeIfThere(join(this.path, file));
        // A v8 file's journal goes with it: without its file it is an orphan nothing reads.
        if (file.endsWith('.v8')) removeIfThere(join(this.path, file + JOURNAL_SUFFIX));
        return { cache, file };
      }
      return { cache, file: undefined };
    });
  }

  #exists(name: string): boolean {
    return this.#existingFile(name) !== undefined;
  }

  #existingFile(name: string): string | undefined {
    for (const [ext] of FORMATS) {
      const file = cacheFileName(name, ext);
      if (exists(join(this.path, file))) return file;
    }
    return undefined;
  }

  #inspect(file: string, format: 'v8' | 'json' | 'csv'): CacheFileInfo {
    // lstat: a link (even a dangling one) is reported as what it is, never followed.
    let bytes = fs.lstatSync(join(this.path, file)).size;
    if (format === 'v8') bytes += fileBytes(join(this.path, file + JOURNAL_SUFFIX));
    try {
      const { name, savedAt, entries, journalRecords = 0, journalTorn = false } = this.#decode(file, format);
      const now = Date.now();
      const expired = splitExpiry(entries).expiresAt.filter((at) => at !== undefined && at <= now).length;
      return { name, file, format, entries: entries.length, bytes, savedAt, verifies: true, problem: undefined, journalRecords, journalTorn, expired };
    } catch (err) {
      if (!(err instanceof FormatError) && !(err instanceof CacheIOError)) throw err;
      const problem = err instanceof CacheIOError ? errorText(err) : err.message;
      return { name: this.#nameOf(file, format), file, format, entries: undefined, bytes, savedAt: undefined, verifies: false, problem, journalRecords: 0, journalTorn: false, expired: 0 };
    }
  }

  #decode(
    file: string,
    format: 'v8' | 'json' | 'csv',
  ): { name: string; savedAt: string | undefined; entries: Array<[unknown, unknown]>; journalRecords?: number; journalTorn?: boolean } {
    const path = join(this.path, file);
    if (format === 'v8') {
      // The file, then its journal's records (every CRC checked), as a load would apply them.
      const raw = readCacheFilesSync(file, path, path + JOURNAL_SUFFIX);
      if (raw === undefined) throw new FormatError('the file vanished while it was read');
      if (raw.meta instanceof FormatError) throw raw.meta;
      if (raw.journal instanceof FormatError) throw new FormatError(`its journal is damaged: ${raw.journal.message}`);
      const map = new Map<unknown, unknown>(); // a key written twice counts once, as loading would
      new DecodedEntries(raw.batches, raw.meta, raw.records).fillInto(map);
      return {
        name: raw.meta.name,
        savedAt: new Date(lastSave(raw.meta.savedAt, raw.records.length, path + JOURNAL_SUFFIX)).toISOString(),
        entries: [...map],
        journalRecords: raw.records.length,
        journalTorn: raw.journal?.torn === true,
      };
    }
    const buf = readCacheFileSync(file, path);
    if (buf === undefined) throw new FormatError('the file vanished while it was read');
    const text = buf.toString('utf8');
    if (format === 'json') {
      let header: { name?: unknown; savedAt?: unknown };
      try {
        header = JSON.parse(text) as { name?: unknown; savedAt?: unknown };
      } catch (err) {
        throw new FormatError(`not valid JSON (${(err as Error).message})`);
      }
      const name = typeof header.name === 'string' ? header.name : file;
      const savedAt = typeof header.savedAt === 'number' ? new Date(header.savedAt).toISOString() : undefined;
      return { name, savedAt, entries: JSON_FORMAT.decode(name, text).entries };
    }
    const name = this.#nameOf(file, 'csv');
    return { name, savedAt: undefined, entries: csvFormat().decode(name, text).entries };
  }

  /** A cache's name without decoding its file: the header, the manifest, or the file name. */
  #nameOf(file: string, format: 'v8' | 'json' | 'csv'): string {
    if (format === 'v8') {
      try {
        const opened = openCacheFileSync(file, join(this.path, file));
        if (opened !== undefined) {
          try {
            return parseFileSync(file, join(this.path, file), opened, headerSteps(opened.size)).meta.name;
          } finally {
            fs.closeSync(opened.handle);
          }
        }
      } catch {
        // the header itself is damaged, or this is no regular file
      }
    }
    let fromManifest: string | undefined;
    try {
      fromManifest = Object.entries(this.manifest?.caches ?? {}).find(([, c]) => c.file === file)?.[0];
    } catch {
      // a damaged manifest names nothing
    }
    return fromManifest ?? file.replace(/\.(v8|json|csv)$/, '');
  }
}

/**
 * When a v8 cache was last saved: a save appends to the journal unless it rewrites the file, so
 * it is the later of the file's own time (its header) and the journal's last write. A journal
 * record carries no time; its file's mtime is that of the last append.
 */
function lastSave(fileSavedAt: number, journalRecords: number, journalPath: string): number {
  if (journalRecords === 0) return fileSavedAt;
  try {
    return Math.max(fileSavedAt, fs.lstatSync(journalPath).mtimeMs);
  } catch {
    return fileSavedAt; // removed since it was read
  }
}

/** Removes a file; false when there was none. */
function removeIfThere(path: string): boolean {
  try {
    fs.unlinkSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Size of a file, 0 when there is none. */
function fileBytes(path: string): number {
  try {
    return fs.lstatSync(path).size;
  } catch {
    return 0;
  }
}

/** Whether anything is at `path`, a dangling link included (existsSync follows links). */
function exists(path: string): boolean {
  try {
    fs.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The reason of a CacheIOError without the cache name and path it starts with. */
function errorText(err: CacheIOError): string {
  return (err.cause as Error | undefined)?.message ?? err.message;
}

export { MANIFEST_FILE };

/** Unwraps values saved with an expiry time (see lib/expiry/envelope.ts). */
function splitExpiry(pairs: Array<[unknown, unknown]>): SavedEntries {
  const entries: Array<[unknown, unknown]> = [];
  const expiresAt: Array<number | undefined> = [];
  for (const [key, value] of pairs) {
    if (isExpiryEnvelope(value)) {
      entries.push([key, value.value]);
      expiresAt.push(value[EXPIRES_FIELD]);
    } else {
      entries.push([key, value]);
      expiresAt.push(undefined);
    }
  }
  return { entries, expiresAt };
}
