/*
 * The public store boundary: what a backend implements so that a cache saves through it and gets
 * every guarantee the core writes once above it (saves read in slices with values frozen at the
 * save's start, change-only saves, the exit flush or a report of what it could not save, the
 * onCorrupt policy, saveOnBlank, expiry kept or refused, generations, following other writers).
 * docs/store-interface.md describes it with a complete example.
 */

/** What a store can do, declared rather than sniffed; the core turns a "no" into a clear error or report. */
export interface StoreCapabilities {
  /**
   * Keeps each entry's expiry time (`StoredEntry.expiresAt`). Without it a cache refuses `ttlMs`
   * and `set(key, value, { ttlMs })` with a TypeError, instead of saving entries that would never
   * expire after a reload.
   */
  readonly expiry: boolean;
  /**
   * Keeps the generation a save names and gives it back on load, so a result computed from the
   * cache can tell, in another run, that it was rebuilt since. Without it every load counts as new
   * contents.
   */
  readonly generations: boolean;
  /**
   * Applies change-only saves (`mode: 'changes'`): the entries set and the keys deleted since the
   * last save. Without it every save is `'whole'`.
   */
  readonly changes: boolean;
}

/** One entry as a store keeps it. */
export interface StoredEntry<K = unknown, V = unknown> {
  readonly key: K;
  readonly value: V;
  /** When it expires, in ms since the epoch; absent when it never does. */
  readonly expiresAt?: number;
}

/** What `load` gives back. */
export interface StoredContents<K = unknown, V = unknown> {
  /** Every saved entry. Entries whose `expiresAt` has passed are dropped by the cache. */
  readonly entries: Iterable<StoredEntry<K, V>>;
  /** The generation the last save named (stores with `capabilities.generations`). */
  readonly generation?: string;
}

/** A part of one save: entries to write and keys to remove. */
export interface StoreBatch<K = unknown, V = unknown> {
  readonly sets: readonly StoredEntry<K, V>[];
  /** Keys to remove (in `'changes'` saves only; a `'whole'` save removes what it does not list). */
  readonly deletes: readonly K[];
}

/**
 * One save, as the core hands it to a store. Its batches hold the entries as they were when
 * `save()` was called, however the cache changes while the store reads them; the core yields to
 * the event loop between batches, so a large save does not stall it.
 */
export interface StoreSave<K = unknown, V = unknown> {
  /** `'whole'`: the batches are the entire contents and replace what is saved. `'changes'`: apply them over it. */
  readonly mode: 'whole' | 'changes';
  /** Names these contents (see `CacheMap.generation`); keep it where `capabilities.generations`. */
  readonly generation: string;
  /** How many entries the batches hold at most (a size hint). */
  readonly bound: number;
  /** The batches, read once, to the end. */
  batches(): AsyncIterable<StoreBatch<K, V>>;
}

/** The same save for the exit flush, read synchronously. */
export interface StoreSyncSave<K = unknown, V = unknown> {
  readonly mode: 'whole' | 'changes';
  readonly generation: string;
  readonly bound: number;
  batches(): Iterable<StoreBatch<K, V>>;
}

/**
 * A backend for caches: give one as the `store` option of a {@link PersistentCache} (or any
 * cache class). Each method receives the cache's name. A method that fails rejects (or throws);
 * the cache keeps its unsaved edits and reports the failure.
 *
 * @example
 * const cache = await PersistentCache.open('users', { store: new MyStore() });
 */
export interface CacheStore<K = unknown, V = unknown> {
  readonly capabilities: StoreCapabilities;
  /**
   * The saved contents, or undefined when nothing is saved. Throw `CorruptCacheFileError` when
   * what is saved is damaged: the cache's `onCorrupt` policy decides what happens next.
   */
  load(name: string): Promise<StoredContents<K, V> | undefined>;
  /**
   * The same, synchronously, for `PersistentCache.loadSync()` (code that cannot await, such as a
   * synchronous memoized function's first call). Optional; damage found here is raised whatever
   * the policy (the next asynchronous load moves it aside).
   */
  loadSync?(name: string): StoredContents<K, V> | undefined;
  /** Writes one save; resolves once it is durable. */
  save(name: string, save: StoreSave<K, V>): Promise<void>;
  /**
   * The same, synchronously, for the exit flush (`process.exit()`, an uncaught exception, a
   * signal). Without it, unsaved edits are saved asynchronously when the event loop empties and on
   * SIGINT/SIGTERM/SIGHUP, and at `process.exit()` or a crash stderr names the cache whose edits
   * are lost and the exit status becomes 1.
   */
  saveSync?(name: string, save: StoreSyncSave<K, V>): void;
  /** Removes what is saved (nothing saved is not an error). */
  remove(name: string): Promise<void>;
  /**
   * Moves a damaged saved state aside (never deletes it) and resolves where it went; called for a
   * load that threw `CorruptCacheFileError` under `onCorrupt: 'quarantine'`. Without it, the load's
   * error is raised whatever the policy: nothing is ever dropped silently.
   */
  quarantine?(name: string): Promise<string>;
  /**
   * Calls `changed` whenever another writer saved `name` (another process, another machine), so a
   * cache opened with `followJournal: true` merges what they saved (it reloads and keeps the keys
   * it has not saved yet). Returns a function that stops it.
   */
  follow?(name: string, changed: () => void): () => void;
}
