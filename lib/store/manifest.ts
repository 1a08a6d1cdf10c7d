import * as fs from 'node:fs';
import { join } from 'node:path';
import { CacheIOError, CorruptCacheFileError, DepcacheError } from '../errors';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-file';
import { MANIFEST_LOCK_STALE_MS, withFileLock, withFileLockSync } from './file-lock';
import { FormatError } from './file-format';
import { quarantine, readCacheFileSync } from './file-store';
import type { SafeDirectory } from './safe-directory';

export { MANIFEST_FILE } from './file-name';
import { MANIFEST_FILE } from './file-name';

/** What a manager records in its directory so that the CLI can see caches and their graph. */
export interface Manifest {
  readonly format: 'depcache-manifest';
  readonly version: 1;
  readonly manager: string;
  readonly updatedAt: string;
  /** Every cache ever registered here: its class and its file (null: memory only). */
  readonly caches: Record<string, { readonly kind: string; readonly file: string | null }>;
  /** Dependency edges: parent → dependents. */
  readonly dependents: Record<string, string[]>;
  /** Caches holding results computed over other caches (memoize's dependsOn): cache → inputs. */
  readonly inputs?: Record<string, string[]>;
}

// Held only while one read-merge-write runs (milliseconds).
const LOCK_WAIT_MS = 5_000;

/**
 * The manifest in `directory`: undefined when there is none.
 * @throws {FormatError} when it is there but damaged (not JSON, or not a manifest)
 */
export function readManifest(directory: string): Manifest | undefined {
  const buf = readCacheFileSync(MANIFEST_FILE, join(directory, MANIFEST_FILE));
  if (buf === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new FormatError(`the manifest is not valid JSON (${(err as Error).message})`);
  }
  if (!isManifest(parsed)) throw new FormatError('the manifest lacks its format, caches or dependents');
  return parsed;
}

/** Merges what this process knows into what is on disk (other processes may share the directory). */
export function mergeManifest(onDisk: Manifest | undefined, ours: Manifest): Manifest {
  if (!onDisk) return ours;
  const union = (a: Record<string, string[]> | undefined, b: Record<string, string[]> | undefined) => {
    const out: Record<string, string[]> = {};
    for (const source of [a ?? {}, b ?? {}]) {
      for (const [from, to] of Object.entries(source)) out[from] = [...new Set([...(out[from] ?? []), ...to])];
    }
    return out;
  };
  return {
    ...ours,
    caches: { ...onDisk.caches, ...ours.caches },
    dependents: union(onDisk.dependents, ours.dependents),
    inputs: union(onDisk.inputs, ours.inputs),
  };
}

/**
 * Merges `manifest` into the one on disk and writes the result atomically, under a lock, so
 * managers in several processes (or one) on the same directory never drop each other's caches
 * or edges. A damaged manifest is moved aside and reported through `report`, never overwritten.
 * @throws {CacheIOError} when the manifest cannot be written
 */
export async function writeManifest(place: SafeDirectory, manifest: Manifest, report: (err: Error) => void): Promise<void> {
  const path = join(place.path, MANIFEST_FILE);
  try {
    place.prepareForWrite();
    await withFileLock(path, LOCK_WAIT_MS, MANIFEST_LOCK_STALE_MS, async () => {
      const merged = mergeManifest(readOrSetAside(place.path, report), manifest);
      await writeFileAtomic(path, async (opened) => {
        await (await opened).writeFile(`${JSON.stringify(merged, null, 1)}\n`);
      }, place.fileMode);
    });
  } catch (err) {
    throw err instanceof DepcacheError ? err : new CacheIOError(MANIFEST_FILE, path, 'write manifest', err);
  }
}

/** The synchronous twin of {@link writeManifest}, for process exit: waits for the lock up to a second. */
export function writeManifestSync(place: SafeDirectory, manifest: Manifest, report: (err: Error) => void): void {
  const path = join(place.path, MANIFEST_FILE);
  try {
    place.prepareForWrite();
    withFileLockSync(path, 1000, MANIFEST_LOCK_STALE_MS, () => {
      const merged = mergeManifest(readOrSetAside(place.path, report), manifest);
      writeFileAtomicSync(path, (fd) => fs.writeFileSync(fd, `${JSON.stringify(merged, null, 1)}\n`), place.fileMode);
    });
  } catch (err) {
    throw err instanceof DepcacheError ? err : new CacheIOError(MANIFEST_FILE, path, 'write manifest', err);
  }
}

/** The manifest on disk; a damaged one is moved aside (kept, reported) and counts as none. */
function readOrSetAside(directory: string, report: (err: Error) => void): Manifest | undefined {
  try {
    return readManifest(directory);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    const path = join(directory, MANIFEST_FILE);
    const quarantinedTo = quarantine(MANIFEST_FILE, path);
    report(new CorruptCacheFileError(MANIFEST_FILE, path, `${err.message}; a new one is written from the caches registered now`, { quarantinedTo }));
    return undefined;
  }
}

function isManifest(value: unknown): value is Manifest {
  const m = value as Partial<Manifest> | null;
  return (
    typeof m === 'object' &&
    m !== null &&
    m.format === 'depcache-manifest' &&
    typeof m.caches === 'object' &&
    m.caches !== null &&
    typeof m.dependents === 'object' &&
    m.dependents !== null &&
    Object.values(m.dependents).every((d) => Array.isArray(d))
  );
}
