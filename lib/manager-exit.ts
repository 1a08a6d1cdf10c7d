import type { AnyCacheMap } from './cache';
import { DepcacheError, errorMessage } from './errors';
import { type ExitFlushable, type ExitSavable, flushAtExit, forgetAtExit, forgetSaveAtExit, saveAtExit } from './exit-flush';
import type { ManifestKeeper } from './manifest-keeper';

/**
 * What a manager does at process exit: writes its dirty caches and its manifest synchronously,
 * and saves beforehand, asynchronously, the caches that cannot be written that way (Redis, a
 * custom saver). Armed by the first cache that needs it, not by the manager: a program that only
 * imports the package, or keeps memory-only caches, gets no signal or exit listener.
 */
export class ManagerExit implements ExitFlushable, ExitSavable {
  readonly #caches: ReadonlyMap<string, AnyCacheMap>;
  readonly #manifest: ManifestKeeper;
  #flushArmed = false;
  #saveArmed = false;

  constructor(caches: ReadonlyMap<string, AnyCacheMap>, manifest: ManifestKeeper) {
    this.#caches = caches;
    this.#manifest = manifest;
  }

  /** From now on, the synchronous flush runs at exit and on SIGINT/SIGTERM/SIGHUP. */
  armFlush(): void {
    if (this.#flushArmed) return;
    this.#flushArmed = true;
    flushAtExit(this);
  }

  /** The caches here that only save asynchronously are saved before the process goes, then flushed. */
  armSave(): void {
    this.armFlush(); // a custom saver may be synchronous: the flush calls it
    if (this.#saveArmed) return;
    this.#saveArmed = true;
    saveAtExit(this);
  }

  /** Nothing here runs at exit any more (the manager closed). */
  disarm(): void {
    forgetAtExit(this);
    forgetSaveAtExit(this);
    this.#flushArmed = false;
    this.#saveArmed = false;
  }

  /** Saves every dirty cache, then the manifest; one failure does not stop the others. */
  flushSync(): unknown[] {
    const failures: unknown[] = [];
    for (const cache of this.#caches.values()) {
      try {
        cache.flushSync();
      } catch (err) {
        failures.push(err instanceof DepcacheError ? err : new DepcacheError('EIO', `${cache.name}: ${errorMessage(err)}`, { cause: err }));
      }
    }
    failures.push(...this.#manifest.flushSync());
    return failures;
  }

  hasUnsavedShared(): boolean {
    for (const cache of this.#caches.values()) if (unsavedShared(cache)) return true;
    return false;
  }

  async saveShared(): Promise<unknown[]> {
    const failures: unknown[] = [];
    await Promise.all(
      [...this.#caches.values()].filter(unsavedShared).map((cache) => cache.save(false).catch((err: unknown) => failures.push(err))),
    );
    return failures;
  }
}

function unsavedShared(cache: AnyCacheMap): boolean {
  return cache.savesAsyncAtExit && cache.hasContents && cache.dirtyEdits > 0;
}
