import * as fs from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { UnsafeDirectoryError } from '../errors';
import { PRIVATE_FILE_MODE } from './atomic-file';

const PRIVATE_DIRECTORY_MODE = 0o700;
// Shared on purpose: what the process's umask allows, as any other program's files.
const SHARED_FILE_MODE = 0o666;
const SHARED_DIRECTORY_MODE = 0o777;

/** The environment variable that sets the default parent of manager directories. */
export const BASE_DIRECTORY_VARIABLE = 'DEPCACHE_DIR';

/**
 * The default parent of manager directories (where no `baseDirectory` is given): `DEPCACHE_DIR`
 * when it is set and not empty (read on each call, so a program may set it before it makes its
 * managers), else {@link userTempDirectory}. The CLI finds caches where managers put them.
 */
export function defaultBaseDirectory(): string {
  const fromEnvironment = process.env[BASE_DIRECTORY_VARIABLE];
  return fromEnvironment !== undefined && fromEnvironment !== '' ? fromEnvironment : userTempDirectory();
}

/**
 * One directory per user in the temp directory (`<os.tmpdir()>/depcache-<uid>`; the user name
 * where there are no uids), so another local user can neither read the caches nor create the
 * directory first: a manager checks it as it checks its own.
 */
export function userTempDirectory(): string {
  const uid = process.getuid?.();
  const who = uid !== undefined ? String(uid) : userInfo().username.replace(/[^A-Za-z0-9_.-]/g, '_');
  return join(tmpdir(), `depcache-${who}`);
}

/** Options of a {@link SafeDirectory}. */
export interface SafeDirectoryOptions {
  /** Skip the owner and mode checks, and create files and directories with the umask's modes. */
  readonly shared?: boolean;
  /** Directories above `path` that must pass the same checks (the per-user temp directory). */
  readonly parents?: readonly string[];
}

/**
 * A cache directory that is checked before it is used: it must be a real directory (not a
 * link), owned by the current user, and not writable by group or others, unless it is shared on
 * purpose. Where the platform has no uids (Windows), only "a real directory, not a link" is
 * checked. Directories it creates are 0700 and its files 0600.
 */
export class SafeDirectory {
  readonly shared: boolean;
  /** Mode of the files written here. */
  readonly fileMode: number;
  readonly #parents: readonly string[];
  #checked = false;

  constructor(
    readonly path: string,
    options: SafeDirectoryOptions = {},
  ) {
    this.shared = options.shared ?? false;
    this.#parents = options.parents ?? [];
    this.fileMode = this.shared ? SHARED_FILE_MODE : PRIVATE_FILE_MODE;
  }

  /**
   * Before reading: true when the directory exists and is safe, false when it does not exist
   * (nothing is saved). @throws {UnsafeDirectoryError} when it exists and is not safe
   */
  checkForRead(): boolean {
    if (this.#checked) return true;
    for (const dir of [...this.#parents, this.path]) {
      if (!this.#check(dir)) return false;
    }
    this.#checked = true;
    return true;
  }

  /**
   * Before writing: creates what is missing (0700) and checks every level.
   * @throws {UnsafeDirectoryError} when a level is not safe; file-system errors as they are
   */
  prepareForWrite(): void {
    if (this.#checked) return;
    const mode = this.shared ? SHARED_DIRECTORY_MODE : PRIVATE_DIRECTORY_MODE;
    for (const dir of [...this.#parents, this.path]) {
      // Not recursive beyond the levels we own: a missing ancestor elsewhere is the caller's.
      fs.mkdirSync(dir, { recursive: true, mode });
      this.#check(dir);
    }
    this.#checked = true;
  }

  /** False when `dir` is missing; throws when it is there and unsafe. */
  #check(dir: string): boolean {
    let stats: fs.Stats;
    try {
      stats = this.shared ? fs.statSync(dir) : fs.lstatSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    if (stats.isSymbolicLink()) throw new UnsafeDirectoryError(dir, 'it is a symbolic link');
    if (!stats.isDirectory()) throw new UnsafeDirectoryError(dir, 'it is not a directory');
    if (this.shared) return true;
    const uid = process.getuid?.();
    if (uid !== undefined && stats.uid !== uid) {
      throw new UnsafeDirectoryError(dir, `it is owned by uid ${stats.uid}, not by you (uid ${uid})`);
    }
    if (uid !== undefined && (stats.mode & 0o022) !== 0) {
      throw new UnsafeDirectoryError(
        dir,
        `it is writable by ${(stats.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')})`,
      );
    }
    return true;
  }
}
