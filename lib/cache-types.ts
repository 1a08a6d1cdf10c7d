/*
 * The public types of every cache: its hooks, its options, the options of one set, its stats.
 * The class itself is in cache.ts.
 */
import type { CacheMap } from './cache';
import type { Contents } from './contents';
import type { CacheManager } from './manager';
import type { CacheStore } from './store/cache-store';

type MaybePromise<T> = T | Promise<T>;

/**
 * A cache of any key and value types, where a signature accepts every cache (a dependent, say):
 * `CacheMap<K, V>` is invariant in both, so `CacheMap<unknown, unknown>` would refuse a typed one.
 */
export type AnyCacheMap = CacheMap<any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Reads saved contents; `undefined` or `null` means nothing is saved. */
export type Loader<K, V> = (name: string) => MaybePromise<Contents<K, V> | undefined | null>;
/** Persists contents. It receives a point-in-time copy it may keep. */
export type Saver<K, V> = (name: string, contents: Map<K, V>) => MaybePromise<void>;
/** Removes saved contents. */
export type Deleter = (name: string) => MaybePromise<void>;
/** Produces fresh contents when nothing valid is saved. */
export type Builder<K, V> = (name: string) => MaybePromise<Contents<K, V>>;
/** Accepts (true) or rejects (false or a throw) loaded contents. */
export type Validator<K, V> = (contents: Map<K, V>) => MaybePromise<boolean>;
/** Reshapes contents; `undefined` keeps its input. Synchronous, so it also runs at process exit. */
export type Processor<K, V> = (contents: Map<K, V>) => Contents<K, V> | undefined | void;

/** The hooks every cache has. `null` removes a hook; `undefined` keeps the class default. */
export interface CacheHooks<K, V> {
  /** @default none (PersistentCache: read the cache file; NonPersistentCache: an empty map) */
  readonly loader?: Loader<K, V> | null;
  /** @default none (PersistentCache: atomic write of the cache file) */
  readonly saver?: Saver<K, V> | null;
  /** @default none (PersistentCache: remove the cache file) */
  readonly deleter?: Deleter | null;
  /** @default none: a build gives an empty map */
  readonly builder?: Builder<K, V> | null;
  /** @default none: everything loaded is valid */
  readonly validator?: Validator<K, V> | null;
  /** Shapes what is saved, never memory. @default none */
  readonly preProcessor?: Processor<K, V> | null;
  /** Shapes what is loaded or built. @default none */
  readonly postProcessor?: Processor<K, V> | null;
}

/** Options of every cache class. */
export interface CacheOptions<K, V> extends CacheHooks<K, V> {
  /** The manager that registers the cache and resolves its dependents. @default getCacheManager() */
  readonly manager?: CacheManager;
  /** Initial contents, copied in. Without them the cache has no contents until loaded or built. */
  readonly contents?: Contents<K, V>;
  /** Caches (or their names) that depend on this one. @default none */
  readonly dependents?: Iterable<string | AnyCacheMap>;
  /** Whether an empty cache is saved (CacheMan's `save_on_blank_cache`). @default true */
  readonly saveOnBlank?: boolean;
  /**
   * The lifetime of an entry, in ms from its `set`: an entry set at `t` is seen while the clock
   * reads less than `t + ttlMs`, then never again (and never saved). `set(key, value, { ttlMs })`
   * overrides it per entry. @default Infinity (entries never expire)
   */
  readonly ttlMs?: number;
  /**
   * At most this many entries: a `set` of a new key beyond it evicts the least recently used one
   * (a `get` or `set` makes an entry recent), as an edit, with an `evict` event. @default Infinity
   */
  readonly maxEntries?: number;
  /** The time source for expiry, in ms since the epoch; read only through this. @default Date.now */
  readonly clock?: () => number;
  /**
   * Where the cache loads from and saves to: a backend implementing {@link CacheStore} (your own,
   * see docs/store-interface.md). It takes the place of the loader, saver and deleter hooks.
   * @default none (PersistentCache: the v8 file store)
   */
  readonly store?: CacheStore<K, V> | CacheStore;
}

/** Options of one `cache.set(key, value, options)`. */
export interface SetOptions {
  /** This entry's lifetime in ms, instead of the cache's `ttlMs` (`Infinity`: never expires). */
  readonly ttlMs?: number;
}

/** Figures about one cache, as `cache.stats` and `manager.stats()` report them. */
export interface CacheStats {
  readonly name: string;
  readonly kind: string;
  readonly entries: number;
  readonly hasContents: boolean;
  /** Edits since the last successful save, load or build. */
  readonly dirtyEdits: number;
  readonly loads: number;
  readonly saves: number;
  readonly builds: number;
  /** Wall-clock time of the last successful save (ms since the epoch). */
  readonly lastSaveAt: number | undefined;
  readonly lastSaveMs: number | undefined;
  /** Bytes written by the last save, when the saver is the default file store. */
  readonly lastSaveBytes: number | undefined;
}
