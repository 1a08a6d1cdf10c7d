// The marks the Redis store puts on the saver it gives a cache, to tell the core what it can do
// beyond `saver(name, map)`: write only the changes, and spill them synchronously at exit.

/**
 * Marks a saver that writes only what changed (the Redis store): save() calls it with the live
 * cache and the changed keys, instead of a copy. It must read every value it needs before its
 * first await. @internal
 */
export const CHANGE_SAVER: unique symbol = Symbol('depcache.changeSaver');

/** What a change-saver is given. @internal */
export interface ChangeSet<K> {
  /** Everything must be rewritten: nothing is known to be saved, or the map was cleared or rebuilt. */
  readonly all: boolean;
  /** With `all`: the saved state is to be replaced (a clear, a rebuild), not merged with. */
  readonly reset: boolean;
  /** Keys set or deleted since the last successful save (when not `all`); built when first read. */
  readonly keys: ReadonlySet<K>;
}

/**
 * The save's changes as they were when it began, read part by part (flat `sets` [k0, v0, ...]
 * with values as saved, and deleted keys), yielding to the event loop between slices: with
 * `all`, every entry and the keys deleted since the last save. Read once. @internal
 */
export type ChangeParts = AsyncIterable<{ readonly sets: readonly unknown[]; readonly deletes: readonly unknown[] }>;

/** @internal */
export interface ChangeSaver<K, V> {
  /**
   * Resolves what the save announces to other processes (opaque to the core), if anything.
   * `cache` reads as the store saves it: V values, or values wrapped with their expiry times.
   */
  [CHANGE_SAVER]: (name: string, cache: ReadonlyMap<K, unknown>, changes: ChangeSet<K>, parts: ChangeParts) => Promise<unknown>;
}

/**
 * Marks a saver that cannot save synchronously but can set the changes aside synchronously
 * (the Redis store's spill file), for the exit flush. @internal
 */
export const SPILL_SYNC: unique symbol = Symbol('depcache.spillSync');

/** @internal */
export interface SyncSpiller {
  [SPILL_SYNC]: (cache: ReadonlyMap<unknown, unknown>, changes: ChangeSet<unknown>) => void;
}
