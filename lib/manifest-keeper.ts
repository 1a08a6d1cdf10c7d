import { basename } from 'node:path';
import type { AnyCacheMap } from './cache';
import type { CacheGraph } from './cache-graph';
import { type Manifest, writeManifest, writeManifestSync } from './store/manifest';
import type { SafeDirectory } from './store/safe-directory';

/** What a manager shows the keeper of its manifest. */
export interface ManifestSource {
  readonly name: string;
  readonly place: SafeDirectory;
  readonly caches: ReadonlyMap<string, AnyCacheMap>;
  readonly graph: CacheGraph;
  /** Where a failure of a background write goes (the manager's `error` event). */
  reportError(err: unknown): void;
}

/**
 * Keeps a manager's manifest (its caches and their graph, for the CLI) up to date on disk: a
 * change schedules one write per event-loop turn however many changes it has, and the exit flush
 * writes what is still pending synchronously. Only a manager with a persistent cache writes one:
 * a directory of memory-only caches stays empty.
 */
export class ManifestKeeper {
  readonly #source: ManifestSource;
  // The pending write: lives until the last write is done, so close() can wait for it.
  #write: Promise<void> | undefined;
  #dirty = false;

  constructor(source: ManifestSource) {
    this.#source = source;
  }

  /** Schedules one write for this turn (the manager calls it while a cache keeps a file in its directory). */
  changed(): void {
    this.#dirty = true;
    this.#write ??= (async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.#dirty) {
        this.#dirty = false;
        try {
          await writeManifest(this.#source.place, this.manifest(), (err) => this.#source.reportError(err));
        } catch (err) {
          this.#source.reportError(err);
        }
      }
      this.#write = undefined;
    })();
  }

  /** Resolves once no write is pending. */
  async settled(): Promise<void> {
    await this.#write;
  }

  /** Writes a pending change now, synchronously (at process exit); resolves the failure, if any. */
  flushSync(): unknown[] {
    if (!this.#dirty) return [];
    this.#dirty = false;
    try {
      writeManifestSync(this.#source.place, this.manifest(), (err) => this.#source.reportError(err));
      return [];
    } catch (err) {
      return [err];
    }
  }

  /** The manifest of the caches registered now. */
  manifest(): Manifest {
    const { name, caches: registered, graph } = this.#source;
    const caches: Record<string, { kind: string; file: string | null }> = {};
    for (const [cacheName, cache] of registered) {
      const main = cache.savedFiles[0];
      caches[cacheName] = { kind: cache.constructor.name, file: main === undefined ? null : basename(main) };
    }
    return {
      format: 'depcache-manifest',
      version: 1,
      manager: name,
      updatedAt: new Date().toISOString(),
      caches,
      dependents: graph.dependentsRecord(),
      inputs: graph.inputsRecord(),
    };
  }
}
