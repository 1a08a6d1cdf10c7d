/*
 * A cache's saver hook as a store: a cache with a custom saver saves through this adapter, so
 * its saves and its exit flush take the one path every store takes (a point-in-time snapshot
 * read in slices, the changes given back when the save fails, the exit flush or a report). One
 * per save, holding the saver as it was when the save began (hooks are fields a user may replace).
 */
import type { Saver } from '../cache-types';
import type { CacheStore, StoreBatch, StoreCapabilities, StoreSave, StoreSyncSave } from './cache-store';

/** The exit flush cannot run this saver synchronously; `message` says why. */
export class ExitSaveRefused extends Error {}

const CAPABILITIES: StoreCapabilities = Object.freeze({ expiry: false, generations: false, changes: false });

// Savers seen to return a promise: the exit flush cannot await them.
const asyncSavers = new WeakSet<object>();

export class HookStore implements CacheStore {
  readonly capabilities = CAPABILITIES;
  readonly #saver: Saver<unknown, unknown>;

  constructor(saver: Saver<unknown, unknown>) {
    this.#saver = saver;
  }

  /** Why the exit flush cannot call this saver synchronously, if it cannot. */
  syncRefusal(): string | undefined {
    return isAsyncSaver(this.#saver) ? 'its saver is asynchronous, and nothing asynchronous runs once process.exit() is called or the process crashes' : undefined;
  }

  /** Not called: a cache with hooks loads through its loader. */
  async load(): Promise<undefined> {
    return undefined;
  }

  /** Not called: a cache with hooks removes through its deleter. */
  async remove(): Promise<void> {}

  /** Collects the save into a copy the saver may keep, then calls it. */
  async save(name: string, save: StoreSave): Promise<void> {
    const contents = new Map<unknown, unknown>();
    for await (const batch of save.batches()) collect(contents, batch);
    const saver = this.#saver;
    await noteAsync(saver, saver(name, contents));
  }

  /**
   * The exit flush: the saver called synchronously, unless it is known to be asynchronous (an
   * `async` function, or one that returned a promise before): nothing it starts could finish,
   * and a write cut short could damage what it saved before.
   */
  saveSync(name: string, save: StoreSyncSave): void {
    const saver = this.#saver;
    const refusal = this.syncRefusal();
    if (refusal !== undefined) throw new ExitSaveRefused(refusal);
    const contents = new Map<unknown, unknown>();
    for (const batch of save.batches()) collect(contents, batch);
    const result = saver(name, contents);
    if (isThenable(result)) {
      asyncSavers.add(saver);
      result.then(undefined, () => undefined); // it cannot be awaited here: never an unhandled rejection
      throw new ExitSaveRefused('its saver returned a promise, which cannot be awaited at exit');
    }
  }
}

function collect(into: Map<unknown, unknown>, batch: StoreBatch): void {
  for (const entry of batch.sets) into.set(entry.key, entry.value);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function isAsyncSaver(saver: object): boolean {
  return asyncSavers.has(saver) || saver.constructor?.name === 'AsyncFunction';
}

/** Remembers that `saver` is asynchronous when what it returned is a promise; passes it on. */
function noteAsync<T>(saver: object, result: T): T {
  if (isThenable(result)) asyncSavers.add(saver);
  return result;
}
