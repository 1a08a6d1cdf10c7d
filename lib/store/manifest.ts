import * as fs from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-file';
import type { SafeDirectory } from './safe-directory';

/** The manifest's file name: cache files never start with a dot, so it can never collide. */
export const MANIFEST_FILE = '.depcache-manifest.json';

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
}

export function readManifest(directory: string): Manifest | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(join(directory, MANIFEST_FILE), 'utf8')) as Manifest;
    return parsed.format === 'depcache-manifest' ? parsed : undefined;
  } catch {
    return undefined; // none yet, or unreadable: the next write replaces it
  }
}

/** Merges what this process knows into what is on disk (other processes may share the directory). */
export function mergeManifest(onDisk: Manifest | undefined, ours: Manifest): Manifest {
  if (!onDisk) return ours;
  const dependents: Record<string, string[]> = {};
  for (const source of [onDisk.dependents, ours.dependents]) {
    for (const [parent, children] of Object.entries(source)) {
      dependents[parent] = [...new Set([...(dependents[parent] ?? []), ...children])];
    }
  }
  return { ...ours, caches: { ...onDisk.caches, ...ours.caches }, dependents };
}

export async function writeManifest(place: SafeDirectory, manifest: Manifest): Promise<void> {
  place.prepareForWrite();
  const merged = mergeManifest(readManifest(place.path), manifest);
  await writeFileAtomic(join(place.path, MANIFEST_FILE), async (opened) => {
    await (await opened).writeFile(`${JSON.stringify(merged, null, 1)}\n`);
  }, place.fileMode);
}

export function writeManifestSync(place: SafeDirectory, manifest: Manifest): void {
  place.prepareForWrite();
  const merged = mergeManifest(readManifest(place.path), manifest);
  writeFileAtomicSync(join(place.path, MANIFEST_FILE), (fd) => fs.writeFileSync(fd, `${JSON.stringify(merged, null, 1)}\n`), place.fileMode);
}
