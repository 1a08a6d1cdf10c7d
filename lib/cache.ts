import { type Contents, fillMap, toMap } from './contents';
import { OperationQueue, outsideOperations } from './operation-queue';
import { ChangeLog, type TakenChanges } from './change-log';
import { randomUUID } from 'node:crypto';
import {
  CacheConflictError,
  CacheContentsMissingError,
  CacheHookError,
  CorruptCacheFileError,
  DepcacheError,
  type HookName,
  ManagerClosedError,
  ReentrantCallError,
} from './errors';
import { checkBoolean, checkHook, checkOptionsObject, declareOptions, describeValue, isDeclaredClass } from './options';
import { CacheManager, getCacheManager } from './manager';
import { type AppendResult, type ChangesToSave, DecodedEntries, type MemorySnapshotSource, type SaveResult } from './store/file-store';
import type { JournalRecord } from './store/journal';
import {
  AllChangesSource,
  ChangeSnapshot,
  type EntrySnapshot,
  type EntryTransform,
  LiveSnapshot,
  type Preserver,
  PreserverFan,
  SKIP_ENTRY,
  mapSize,
} from './store/snapshot';
import { EntryBook } from './expiry/entry-book';
import { coarseNow } from './coarse-clock';
import { slottedMaps } from './expiry/slotted';
import { type InspectOptions, inspect } from 'node:util';
import { EXPIRES_FIELD, isExpiryEnvelope, wrapExpiring } from './expiry/envelope';
import { assertCacheName } from './store/file-name';
import type { CacheStore } from './store/cache-store';
import { type ChangeSource, StoredMap, fromStored, slicedBatches, syncBatches } from './store/store-save';
import { CHANGE_SAVER, type ChangeSaver, SPILL_SYNC, type SyncSpiller } from './store/saver-marks';

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

/** What a journaling store offers a cache's saves. */
export interface JournalWriter {
  /** Whether there is a saved file to append to (else a save writes it whole). */
  hasBase(): boolean;
  /**
   * Writes the snapshot as the whole file unless, once the lock is held, a file exists (another
   * process saved first): then resolves undefined, and the caller appends instead.
   */
  writeIfNoBase(snapshot: EntrySnapshot): Promise<number | undefined>;
  /** Appends one save's record; undefined when there is nothing to append to (write whole). */
  append(record: JournalRecord): Promise<AppendResult | undefined>;
  /** The same, synchronously, for the exit flush. */
  appendSync(record: JournalRecord): AppendResult | undefined;
  /**
   * One save's changes (see FileStore.saveChanges): appended as one record read part by part,
   * or `whole` written as the new base; undefined when there is no base and no `whole`.
   */
  saveChanges(changes: ChangesToSave): Promise<SaveResult | undefined>;
  /** Whether the save should offer its whole map too (cheap, synchronous). */
  mayWriteWhole(bound: number, all: boolean): boolean;
  /** After an append: compacts in the background when the journal has grown enough. */
  afterAppend(result: AppendResult): void;
}

/** Writes a snapshot through a store that can read the live map copy-on-write. */
export type SnapshotWriter = (snapshot: EntrySnapshot) => Promise<number>;


/**
 * A named `Map` that loads, saves, builds, validates and invalidates its contents through hooks,
 * registered with a {@link CacheManager} that cascades operations to its dependents.
 * The base class has no default hooks; see {@link PersistentCache} for one backed by a file.
 *
 * @example
 * const cache = await PersistentCache.open<string, number>('scores');
 * cache.set('alice', 3);
 * await cache.save();
 */
export class CacheMap<K = unknown, V = unknown> extends Map<K, V> {
  /** The cache's name, unique within its manager. */
  readonly name: string;
  /** The manager this cache is registered with. */
  readonly manager: CacheManager;
  loader: Loader<K, V> | null;
  saver: Saver<K, V> | null;
  deleter: Deleter | null;
  builder: Builder<K, V> | null;
  validator: Validator<K, V> | null;
  preProcessor: Processor<K, V> | null;
  postProcessor: Processor<K, V> | null;
  /** Whether an empty cache is saved. */
  saveOnBlank: boolean;

  #hasContents = true; // as built by Map's constructor; the constructor settles it
  #writable = true; // false once the manager closed: writes could never be saved
  // The prototype of the nearest class of ours (a user's subclass sits above it).
  readonly #realPrototype: object;
  // Whose methods do get/set/delete/... in the cache's present state (contents or not, expiry,
  // closed): the cache's own prototype, or, for a user's subclass, what its calls dispatch to.
  #behaviour: object = CacheMap.prototype;
  // A user's subclass keeps its own prototype, so its overrides run on every call.
  readonly #subclassed: boolean;
  // Lifecycle operations of one cache run one at a time, in order.
  readonly #queue = new OperationQueue();
  // Which contents these are: new for every build or adoption, kept through saves and loads.
  #generation = newGeneration();
  // Edits ever made, and how many of them the saved state covers; their difference is "dirty".
  #edits = 0;
  #savedEdits = 0;
  // When #edits reaches this, editThresholdReached() runs: subclasses get one compare per edit.
  #editTrigger = Number.POSITIVE_INFINITY;
  // The snapshot a save is reading while the map may change; it keeps old values on change.
  // With several readers at once (a save during a compaction), a fan that calls each.
  #snapshot: Preserver | null = null;
  readonly #readers: Preserver[] = [];
  // Background work started by this cache (compactions, store snapshots), still running.
  readonly #background = new Set<Promise<void>>();
  // Keys changed since the last save, for savers that write only changes (Redis); null: off.
  // Keys changed since the last save, for stores that write only those (off until tracked).
  readonly #log = new ChangeLog<K>();
  // What the save under way took of the log: if the process exits before it is written, the
  // exit flush writes it too.
  #inflight: TakenChanges<K> | null = null;
  // The last load found nothing saved: contents built then merge with whatever another
  // process saved meanwhile, where a rebuild over a saved state replaces it.
  #foundNothingSaved = false;
  #queuedSave: Promise<boolean> | null = null;
  #loads = 0;
  #merges = 0;
  #saves = 0;
  #builds = 0;
  #lastSaveAt: number | undefined;
  #lastSaveMs: number | undefined;
  #lastSaveBytes: number | undefined;
  // Expiry and recency (ttlMs, maxEntries, per-entry ttl): null until one is used, so a cache
  // that never uses them keeps Map's own get and pays one compare in set.
  #book: EntryBook<unknown, unknown> | null = null;
  #purgeTimer: NodeJS.Timeout | undefined; // armed while some entry may expire
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #clock: () => number;
  // A backend given as the `store` option, and the saver that stands for it (replacing it, as
  // any hook can be, turns the store's saves off).
  readonly #store: CacheStore<unknown, unknown> | null;
  readonly #storeSaver: Saver<K, V> | null;
  readonly #storeLoader: Loader<K, V> | null;

  constructor(name: string, options: CacheOptions<K, V> = {}) {
    super(); // never super(entries): Map's constructor would call our set() before #fields exist
    this.#realPrototype = libraryPrototype(new.target.prototype as object);
    this.#subclassed = this.#realPrototype !== new.target.prototype;
    this.#behaviour = this.#realPrototype;
    if (this.#subclassed) CacheMap.#dispatchBelow(new.target.prototype as object, this.#realPrototype);
    assertCacheName(name);
    checkOptionsObject(name, options, new.target);
    checkCacheOptions(name, options as Readonly<Record<string, unknown>>);
    this.name = name;
    this.manager = options.manager ?? getCacheManager();
    this.loader = options.loader ?? null;
    this.saver = options.saver ?? null;
    this.deleter = options.deleter ?? null;
    this.builder = options.builder ?? null;
    this.validator = options.validator ?? null;
    this.preProcessor = options.preProcessor ?? null;
    this.postProcessor = options.postProcessor ?? null;
    this.saveOnBlank = options.saveOnBlank ?? true;
    this.#store = checkStore(name, options as CacheOptions<unknown, unknown>);
    this.#storeSaver = null;
    this.#storeLoader = null;
    if (this.#store !== null) {
      const store = this.#store;
      this.#storeSaver = async () => undefined; // never called: save() writes through the store
      this.saver = this.#storeSaver;
      this.#storeLoader = (n) => this.#loadFromStore(store, n) as ReturnType<Loader<K, V>>;
      this.loader = this.#storeLoader;
      this.deleter = (n) => store.remove(n);
    }
    this.#ttlMs = checkLifetime(name, 'ttlMs', options.ttlMs);
    this.#maxEntries = checkMaxEntries(name, options.maxEntries);
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new TypeError(`${name}: clock: expected a function, got ${describeValue(options.clock)}`);
    }
    // Read once per synchronous stretch by default: a loop of reads pays for one Date.now().
    this.#clock = options.clock ?? coarseNow;
    if (this.#ttlMs !== Number.POSITIVE_INFINITY && !this.keepsExpiryTimes) {
      throw new TypeError(`${name}: ttlMs: a ${new.target.name} cannot save expiry times; use a PersistentCache or a JSON cache`);
    }
    if (this.#ttlMs !== Number.POSITIVE_INFINITY && options.saver) {
      throw new TypeError(`${name}: ttlMs: a custom saver is given values only, so it cannot save expiry times`);
    }
    if (this.#ttlMs !== Number.POSITIVE_INFINITY && this.#store !== null && !this.#store.capabilities.expiry) {
      throw new TypeError(`${name}: ttlMs: its store cannot save expiry times (capabilities.expiry is false)`);
    }
    if (options.contents !== undefined) {
      fillMap(this, options.contents, name, 'contents option');
      this.#edits = Math.max(1, super.size);
    } else this.#setHasContents(false);
    if (this.#ttlMs !== Number.POSITIVE_INFINITY || this.#maxEntries !== Number.POSITIVE_INFINITY) this.#enableExpiry(true);
    this.manager.adoptCache(this);
    // A custom saver may be asynchronous: it is awaited when the loop empties and on a signal.
    if (options.saver || (this.#store !== null && this.#store.saveSync === undefined)) this.manager.saveSharedAtExit();
    if (this.#store?.capabilities.changes === true) this.trackChanges(true);
    for (const dependent of options.dependents ?? []) this.addDependent(dependent);
  }

  /**
   * Constructs the cache and, when no `contents` were given, runs `loadOrBuild()`, like
   * CacheMan's constructor (given contents are kept, as unsaved edits). A name already
   * registered with the manager resolves that cache when it is of the same class.
   * @throws {CacheConflictError} EALREADY_REGISTERED when the name is registered as another class
   * @example const users = await CacheMap.open('users', { builder: fetchUsers });
   */
  static open<K = unknown, V = unknown>(
    name: string,
    options?: CacheOptions<K, V>,
  ): Promise<CacheMap<K, V>> {
    // `this`: a subclass's open() makes one of its own.
    return openCache(this, name, options, () => new this<K, V>(name, options));
  }

  // ----- Map surface: reads are Map's own; writes count edits. -----

  /** Whether the cache has contents (CacheMan's `contents is not None`). */
  get hasContents(): boolean {
    return this.#hasContents;
  }

  /**
   * Changes whenever the entries may have changed (any edit, load or build); never repeats. Lets
   * a reader keep a derived index and know, with one compare, whether it is still true. @internal
   */
  get contentsVersion(): number {
    // Every path that changes the map bumps one of these: set/delete/clear/adopt/build count
    // edits, loads (and dropped contents) count loads, another process's saves merged in count
    // merges. All only grow, so their sum never repeats.
    return this.#edits + this.#loads + this.#merges;
  }

  /**
   * Names these contents: a new value whenever they are built (or rebuilt) or replaced
   * wholesale, kept through save and load by the stores that can (the v8 and JSON files), so a
   * result computed from this cache can tell, even in another process, that the cache was
   * rebuilt since. Edits do not change it. A load from a store that keeps none gives a new one.
   */
  get generation(): string {
    return this.#generation;
  }

  /** Edits since the last successful save, load or build. */
  get dirtyEdits(): number {
    return this.#edits - this.#savedEdits;
  }

  // Reads are Map's own. A cache without contents has a twin prototype whose methods throw
  // CacheContentsMissingError (or build, for LazyCache), so no read pays for that check.

  /**
   * Sets an entry, as Map's `set` does; `options.ttlMs` gives this entry its own lifetime, and so
   * does a number of ms in its place (Keyv's `store.set(key, value, ttl)`): one ≤ 0 means already
   * expired, so the key is removed.
   * @throws {CacheContentsMissingError} ECONTENTS_MISSING when the cache has no contents
   * @throws {TypeError} for a lifetime the cache's store cannot save (a CSV file, a custom saver)
   */
  override set(key: K, value: V, options?: SetOptions | number): this {
    if (options !== undefined) return this.#setWithOptions(key, value, options);
    // Reached with the book on only by a direct call (an override on the instance): its set.
    if (this.#book !== null) return (this.#behaviour as this).set.call(this, key, value);
    if (this.#snapshot !== null) this.#snapshot.preserve(key);
    const log = this.#log;
    const logged = log.keys;
    if (logged !== null && logged.push(key) > log.limit) log.overflowed(this);
    super.set(key, value);
    if (++this.#edits >= this.#editTrigger) this.editThresholdReached();
    return this;
  }

  /** @throws {CacheContentsMissingError} ECONTENTS_MISSING when the cache has no contents */
  override delete(key: K): boolean {
    if (this.#book !== null) return (this.#behaviour as this).delete.call(this, key);
    return this.#baseDelete(key);
  }

  #baseDelete(key: K): boolean {
    if (this.#snapshot !== null) this.#snapshot.preserve(key);
    if (!super.delete(key)) return false;
    this.#log.deleted(key, this);
    if (++this.#edits >= this.#editTrigger) this.editThresholdReached();
    return true;
  }

  /** Counts as one edit per removed entry (at least one), as a loop of deletes would. */
  override clear(): void {
    if (this.#book !== null) return (this.#behaviour as this).clear.call(this);
    this.#baseClear();
  }

  #baseClear(): void {
    const removed = super.size;
    if (this.#snapshot !== null) this.#snapshot.preserveAll();
    super.clear();
    this.#log.markAll(true);
    this.#edits += Math.max(1, removed);
    if (this.#edits >= this.#editTrigger) this.editThresholdReached();
  }

  override get [Symbol.toStringTag](): string {
    return this.constructor.name;
  }

  // ----- Expiry and bounds -----
  //
  // A cache that expires or bounds entries keeps, in its Map, each key's slot in an EntryBook
  // (which holds the value, its expiry time and its recency), so get and set hash the key once.
  // Its reads and writes are those of a twin prototype (see #expiringTwin); everything that
  // reads the Map underneath (snapshots, journal records, change-savers) reads it through a
  // transform that turns a slot back into the value as it is saved.

  /**
   * When `key`'s entry expires, in ms since the epoch; undefined when it never does, or is
   * absent or already expired.
   */
  expiresAt(key: K): number | undefined {
    const book = this.#book;
    if (book === null) return undefined;
    const slot = super.get(key) as number | undefined;
    if (slot === undefined) return undefined;
    const at = book.expiresAt(slot);
    if (at === Number.POSITIVE_INFINITY || at <= this.#clock()) return undefined;
    return at;
  }

  /**
   * Removes the entries that have expired, now, and returns how many (each counts as an edit,
   * so the next save drops them from the saved state too). A timer does this by itself at the
   * earliest expiry (at least a second after it was armed); until then `size` counts them.
   */
  purgeExpired(): number {
    const book = this.#book;
    if (book === null || !this.#hasContents || !this.#writable) return 0;
    return book.purge(this.#clock(), (key) => this.#removeSlotted(book, key as K));
  }

  /** Whether this class's store can keep expiry times (a CSV file cannot). */
  protected get keepsExpiryTimes(): boolean {
    return true;
  }

  /**
   * Refuses an expiry time the store would drop (a CSV cell, a custom saver, which is given
   * values only): after a reload the entry would never expire, and nothing would say so.
   */
  #assertKeepsExpiry(where: string): void {
    const saver = this.saver;
    if (!this.keepsExpiryTimes) throw new TypeError(`${this.name}: ${where}: a ${this.constructor.name} cannot save expiry times`);
    if (saver !== null && saver === this.#storeSaver) {
      if ((this.#store as CacheStore).capabilities.expiry) return;
      throw new TypeError(`${this.name}: ${where}: its store cannot save expiry times (capabilities.expiry is false)`);
    }
    if (saver !== null && !(CHANGE_SAVER in saver) && this.syncSnapshotWriter(saver) === undefined) {
      throw new TypeError(`${this.name}: ${where}: a custom saver is given values only, so it cannot save expiry times`);
    }
  }

  #setWithOptions(key: K, value: V, options: SetOptions | number): this {
    const ttlMs = checkSetOptions(this.name, options) ?? this.#ttlMs;
    if (ttlMs === 0) {
      // Already expired: the entry is gone, as an expired one is.
      (this.#behaviour as this).delete.call(this, key);
      return this;
    }
    if (ttlMs !== Number.POSITIVE_INFINITY) this.#assertKeepsExpiry('set');
    if (this.#book === null) this.#enableExpiry();
    // The expiring set (the behaviour just changed), or the missing/closed guard on it; never
    // this.set, which may be an override that called here.
    return (this.#behaviour as this).set.call(this, key, value, options);
  }

  /**
   * Starts keeping expiry times and recency: each value moves into the book and the Map keeps
   * its slot. Entries present now never expire, except the contents given to the constructor
   * (`fresh`), which are set now with the cache's lifetime.
   */
  #enableExpiry(fresh = false): void {
    if (this.#book !== null) return;
    const book = new EntryBook<unknown, unknown>(this.#maxEntries !== Number.POSITIVE_INFINITY);
    this.#book = book;
    slottedMaps.add(this);
    this.#fillBook(fresh);
    this.#applyPrototype();
    this.#trimToMax();
    this.#armPurge();
  }

  /**
   * Moves every value of the Map into the (emptied) book, leaving its slot in the Map, in
   * place (the order stays): values saved with an expiry time are unwrapped, and entries that
   * expired meanwhile are dropped. `fresh` contents (built, given, adopted) are set now, with the
   * cache's lifetime; loaded ones keep what they were saved with.
   */
  #fillBook(fresh: boolean): void {
    const book = this.#book as EntryBook<unknown, unknown>;
    // A save reading the Map now must keep writing the values it began with, not slots.
    this.#snapshot?.preserveAll();
    book.clear();
    const now = this.#clock();
    const fallback = fresh && this.#ttlMs !== Number.POSITIVE_INFINITY ? now + this.#ttlMs : Number.POSITIVE_INFINITY;
    const expired: unknown[] = [];
    const pairs: unknown[] = [];
    Map.prototype.forEach.call(this, (value: unknown, key: unknown) => pairs.push(key, value));
    for (let i = 0; i < pairs.length; i += 2) {
      const key = pairs[i];
      let value = pairs[i + 1];
      let at = fallback;
      if (typeof value === 'object' && value !== null && isExpiryEnvelope(value)) {
        at = value[EXPIRES_FIELD];
        value = value.value;
      }
      if (at <= now) expired.push(key);
      else super.set(key as K, book.add(key, value, at) as V);
    }
    // Expired while nobody ran: never seen. Not edits: the saved copies expire on every load.
    for (const key of expired) super.delete(key as K);
  }

  /** The expiry of an entry set now with `options` (undefined: the cache's ttlMs). */
  #expiryOf(options: SetOptions | number | undefined): number {
    const ttlMs = (options === undefined ? undefined : checkSetOptions(this.name, options)) ?? this.#ttlMs;
    if (ttlMs === Number.POSITIVE_INFINITY) return ttlMs;
    if (ttlMs === 0) return Number.NEGATIVE_INFINITY; // already expired: the set removes the key
    if (options !== undefined) this.#assertKeepsExpiry('set');
    return this.#clock() + ttlMs;
  }

  /** After the Map was refilled with values (a load, a build, adopted contents): into the book. */
  #expiryAfterReplace(fresh: boolean): void {
    if (this.#book === null) {
      let saved = false;
      Map.prototype.forEach.call(this, (value: unknown) => {
        if (!saved && typeof value === 'object' && value !== null && isExpiryEnvelope(value)) saved = true;
      });
      if (!saved) return;
      this.#enableExpiry(fresh); // fills the book
    } else this.#fillBook(fresh);
    this.#armPurge();
  }

  /** Removes `key` as a delete does (an edit, logged for the next save) and frees its slot. */
  #removeSlotted(book: EntryBook<unknown, unknown>, key: K): void {
    const slot = super.get(key) as number | undefined;
    if (slot === undefined) return;
    this.#baseDelete(key); // keeps the snapshot's copy (it reads the slot)
    book.free(slot);
  }

  /** Evicts least recently used entries while there are more than maxEntries. */
  #trimToMax(): void {
    const book = this.#book;
    if (book === null || this.#maxEntries === Number.POSITIVE_INFINITY || !this.#hasContents) return;
    while (super.size > this.#maxEntries) this.#evictOldest(book);
  }

  #evictOldest(book: EntryBook<unknown, unknown>): void {
    const victim = book.oldest();
    if (victim === undefined) return;
    this.#removeSlotted(book, victim as K);
    this.manager.notify('evict', { cache: this.name, key: victim });
  }

  /** Arms the unref'd timer that purges expired entries, if some entry may expire. */
  #armPurge(): void {
    const book = this.#book;
    if (book === null || this.#purgeTimer !== undefined || book.expiringCount === 0) return;
    const wait = Math.min(Math.max(book.earliestExpiry - this.#clock(), PURGE_MIN_MS), MAX_TIMER_MS);
    this.#purgeTimer = setTimeout(() => {
      this.#purgeTimer = undefined;
      try {
        this.purgeExpired();
      } catch (err) {
        this.manager.reportError(err);
      }
      if (this.#writable) this.#armPurge();
    }, wait);
    this.#purgeTimer.unref();
  }

  /**
   * How a save reads the Map underneath (`slots`: this cache's own, which holds slots) or a
   * plain copy of values: each entry as it is saved, with its expiry time, or SKIP_ENTRY once
   * it has expired. Null when entries are saved as they are.
   */
  #saveTransform(slots: boolean, now = this.#clock()): EntryTransform | null {
    const book = this.#book;
    if (book === null) return null;
    if (slots) {
      return (_key, slot) => {
        const at = book.expiresAt(slot as number);
        const value = book.value(slot as number);
        if (at === Number.POSITIVE_INFINITY) return value;
        return at <= now ? SKIP_ENTRY : wrapExpiring(value, at);
      };
    }
    if (book.expiringCount === 0) return null;
    return (key, value) => {
      const slot = super.get(key as K) as number | undefined;
      const at = slot === undefined ? Number.POSITIVE_INFINITY : book.expiresAt(slot);
      if (at === Number.POSITIVE_INFINITY) return value;
      return at <= now ? SKIP_ENTRY : wrapExpiring(value, at);
    };
  }

  /** A copy-on-write snapshot of `map` (this cache, or a pre-processed copy) as a save writes it. */
  #snapshotOf(map: Map<unknown, unknown>): LiveSnapshot {
    const now = this.#clock();
    const transform = this.#saveTransform(map === this, now);
    const book = this.#book;
    // The entries the transform leaves out, counted at the same instant: a file's header states its size.
    const skipped = transform === null || book === null ? 0 : countExpired(map, book, now);
    return new LiveSnapshot(map, this.#generation, transform, skipped);
  }

  /**
   * The entries as a store writes them: values with their expiry times, expired ones left out
   * (the cache itself when it keeps no expiry). @internal
   */
  savedView(): ReadonlyMap<K, unknown> {
    return this.#persistedView();
  }

  /** What a change-saver reads: the cache itself, or a view of the values as they are saved. */
  #persistedView(): ReadonlyMap<K, unknown> {
    const transform = this.#saveTransform(true);
    return transform === null ? this : new PersistedView<K>(this, transform);
  }

  /**
   * The prototype of a cache that expires or bounds entries: a twin of its class's prototype
   * whose reads skip expired entries and go through the book. Built once per class.
   */
  static #expiringTwin(real: object): object {
    let twin = expiringPrototypes.get(real);
    if (twin !== undefined) return twin;
    // The time for a scan of every entry: never read when nothing expires.
    const now = (cache: CacheMap<unknown, unknown>, book: EntryBook<unknown, unknown>) => (book.expiringCount === 0 ? 0 : cache.#clock());
    const methods = {
      get(this: CacheMap<unknown, unknown>, key: unknown): unknown {
        const slot = mapGet.call(this, key) as number | undefined;
        if (slot === undefined) return undefined;
        const book = this.#book as EntryBook<unknown, unknown>;
        // While nothing expires (maxEntries alone), the clock is not even looked up.
        return book.expiringCount === 0 ? book.touch(slot) : book.read(slot, this.#clock);
      },
      has(this: CacheMap<unknown, unknown>, key: unknown): boolean {
        if (!this.#hasContents) this.contentsMissing(); // LazyCache builds here, as its own has() does
        const slot = mapGet.call(this, key) as number | undefined;
        if (slot === undefined) return false;
        return (this.#book as EntryBook<unknown, unknown>).liveNow(slot, this.#clock);
      },
      // CacheMap's set, inlined (a call more is a tenth of this path), with the book.
      set(this: CacheMap<unknown, unknown>, key: unknown, value: unknown, options?: SetOptions | number): CacheMap<unknown, unknown> {
        const book = this.#book as EntryBook<unknown, unknown>;
        const at = options === undefined ? (this.#ttlMs === Number.POSITIVE_INFINITY ? this.#ttlMs : this.#clock() + this.#ttlMs) : this.#expiryOf(options);
        if (at === Number.NEGATIVE_INFINITY) {
          (this.#behaviour as CacheMap<unknown, unknown>).delete.call(this, key);
          return this;
        }
        if (this.#snapshot !== null) this.#snapshot.preserve(key); // reads the old slot: before it changes
        const log = this.#log;
        const logged = log.keys;
        if (logged !== null && logged.push(key) > log.limit) log.overflowed(this);
        const slot = mapGet.call(this, key) as number | undefined;
        if (slot !== undefined) book.update(slot, value, at);
        else {
          mapSet.call(this, key, book.add(key, value, at));
          if (book.size > this.#maxEntries) this.#evictOldest(book);
        }
        if (at !== Number.POSITIVE_INFINITY && this.#purgeTimer === undefined) this.#armPurge();
        if (++this.#edits >= this.#editTrigger) this.editThresholdReached();
        return this;
      },
      delete(this: CacheMap<unknown, unknown>, key: unknown): boolean {
        const slot = mapGet.call(this, key) as number | undefined;
        if (slot === undefined) return false;
        const book = this.#book as EntryBook<unknown, unknown>;
        const visible = book.liveNow(slot, this.#clock);
        this.#baseDelete(key);
        book.free(slot);
        return visible;
      },
      clear(this: CacheMap<unknown, unknown>): void {
        this.#baseClear(); // the snapshot keeps its copies first (through the book)
        (this.#book as EntryBook<unknown, unknown>).clear();
      },
      forEach(this: CacheMap<unknown, unknown>, fn: (value: unknown, key: unknown, map: Map<unknown, unknown>) => void, thisArg?: unknown): void {
        const book = this.#book as EntryBook<unknown, unknown>;
        const at = now(this, book);
        Map.prototype.forEach.call(this, (slot: unknown, key: unknown) => {
          if (book.live(slot as number, at)) fn.call(thisArg, book.value(slot as number), key, this);
        });
      },
      *entries(this: CacheMap<unknown, unknown>): IterableIterator<[unknown, unknown]> {
        const book = this.#book as EntryBook<unknown, unknown>;
        const at = now(this, book);
        for (const [key, slot] of Map.prototype.entries.call(this) as IterableIterator<[unknown, number]>) {
          if (book.live(slot, at)) yield [key, book.value(slot)];
        }
      },
      *keys(this: CacheMap<unknown, unknown>): IterableIterator<unknown> {
        for (const entry of methods.entries.call(this)) yield entry[0];
      },
      *values(this: CacheMap<unknown, unknown>): IterableIterator<unknown> {
        for (const entry of methods.entries.call(this)) yield entry[1];
      },
      // console.log shows the entries, not the slots the Map holds underneath.
      [inspect.custom](this: CacheMap<unknown, unknown>, _depth: number, options: InspectOptions): string {
        const visible = this.#hasContents ? new Map(methods.entries.call(this)) : new Map();
        return `${this.constructor.name} ${inspect(visible, options)}`;
      },
    };
    twin = Object.create(real) as object;
    for (const name of Reflect.ownKeys(methods)) {
      Object.defineProperty(twin, name, { configurable: true, writable: true, value: methods[name as keyof typeof methods] });
    }
    Object.defineProperty(twin, Symbol.iterator, { configurable: true, writable: true, value: methods.entries });
    expiringPrototypes.set(real, twin);
    return twin;
  }

  // ----- Dependents -----

  /** Names of the caches that depend on this one (kept by the manager). */
  get dependents(): ReadonlySet<string> {
    return this.manager.dependentsOf(this.name);
  }

  /** Makes `dependent` follow this cache through cascading operations. */
  addDependent(dependent: string | AnyCacheMap): void {
    this.manager.addDependency(this.name, typeof dependent === 'string' ? dependent : dependent.name);
  }

  // ----- Lifecycle -----

  /**
   * Runs loader → validator → postProcessor and replaces the entries in place.
   * Resolves true when contents were loaded; otherwise the cache has no contents.
   * @throws {CacheHookError} EHOOK when the loader or postProcessor throws (the cache is unchanged)
   */
  load(cascade = false): Promise<boolean> {
    if (cascade) return this.manager.cascade(this.name, (c) => c.load(false));
    return this.#exclusive(() => this.#loadNow(), 'load');
  }

  /**
   * Runs preProcessor → saver on a point-in-time snapshot. Saves of one cache run one at a time;
   * a save requested while one runs makes exactly one more, with the latest contents.
   * Resolves true when the saver ran.
   */
  save(cascade = false): Promise<boolean> {
    if (cascade) return this.manager.cascade(this.name, (c) => c.save(false));
    // Before the coalescing: a hook awaiting the queued save would wait for itself.
    const reentry = this.#reentry('save');
    if (reentry) return Promise.reject(reentry);
    if (this.#queuedSave) return this.#queuedSave;
    const queued = this.#exclusive(() => {
      this.#queuedSave = null;
      return this.#saveNow();
    }, 'save');
    this.#queuedSave = queued;
    return queued;
  }

  /** Reloads from the saved state, dropping unsaved edits; cascades to dependents by default. */
  invalidate(cascade = true): Promise<boolean> {
    this.manager.announce('invalidate', this.name, cascade);
    if (cascade) return this.manager.cascade(this.name, (c) => c.invalidate(false));
    return this.#exclusive(async () => {
      const loaded = await this.#loadNow();
      this.manager.notify('invalidate', { cache: this.name, loaded });
      return loaded;
    }, 'invalidate');
  }

  /** Runs the deleter; memory is untouched. Cascades to dependents by default. */
  deleteSavedContent(cascade = true): Promise<void> {
    this.manager.announce('delete', this.name, cascade);
    if (cascade) return this.manager.cascade(this.name, (c) => c.deleteSavedContent(false));
    return this.#exclusive(() => this.#deleteNow(), 'deleteSavedContent');
  }

  /** Drops memory and saved state, builds and saves; cascades to dependents by default. */
  invalidateAndRebuild(cascade = true): Promise<void> {
    this.manager.announce('rebuild', this.name, cascade);
    if (cascade) return this.manager.cascade(this.name, (c) => c.invalidateAndRebuild(false));
    return this.#exclusive(async () => {
      // Build first: if the builder throws, neither memory nor the saved state has changed.
      const built = await this.#produceBuilt();
      await this.#deleteNow();
      await this.#installBuilt(built);
    }, 'invalidateAndRebuild');
  }

  /** Loads, and builds (and saves) when nothing valid was loaded. Resolves true when loaded. */
  loadOrBuild(cascade = true): Promise<boolean> {
    if (cascade) return this.manager.cascade(this.name, (c) => c.loadOrBuild(false));
    return this.#exclusive(async () => {
      if (await this.#loadNow()) return true;
      await this.#installBuilt(await this.#produceBuilt(), !this.#foundNothingSaved);
      return false;
    }, 'loadOrBuild');
  }

  /** Runs builder → postProcessor, replaces the entries in place, then saves. */
  build(): Promise<void> {
    return this.#exclusive(async () => this.#installBuilt(await this.#produceBuilt()), 'build');
  }

  /** Saves (CacheMan's `with cache:`), for `await using cache = ...`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.save();
  }

  /** Counters and timings of this cache. */
  get stats(): CacheStats {
    return {
      name: this.name,
      kind: this.constructor.name,
      entries: super.size,
      hasContents: this.#hasContents,
      dirtyEdits: this.dirtyEdits,
      loads: this.#loads,
      saves: this.#saves,
      builds: this.#builds,
      lastSaveAt: this.#lastSaveAt,
      lastSaveMs: this.#lastSaveMs,
      lastSaveBytes: this.#lastSaveBytes,
    };
  }

  /**
   * Saves synchronously if the cache is dirty and its saver can run without the event loop
   * (the default file store). Used at process exit. @internal
   */
  flushSync(): boolean {
    if (!this.#hasContents || this.dirtyEdits === 0) return false;
    // A save still writing will never finish: what it took is unsaved again.
    if (this.#inflight !== null) {
      this.#log.restore(this.#inflight);
      this.#inflight = null;
    }
    if (this.saver !== null && this.saver === this.#storeSaver) return this.#flushStoreSync(this.#store as CacheStore);
    const spill = (this.saver as Partial<SyncSpiller> | null)?.[SPILL_SYNC];
    if (spill !== undefined && this.#log.tracking && !this.preProcessor) {
      if (!this.saveOnBlank && super.size === 0) return false; // as save() would
      const edits = this.#edits;
      const taken = this.#log.take(super.size);
      const keys = new Set<unknown>(taken.keys);
      for (const key of taken.deletes) keys.add(key);
      try {
        spill(this.#persistedView(), { all: taken.all, reset: taken.reset, keys });
      } catch (err) {
        this.#log.restore(taken);
        throw err;
      }
      this.#savedEdits = edits;
      return true;
    }
    const write = this.syncSnapshotWriter(this.saver);
    if (!write) return this.#flushCustomSync();
    const edits = this.#edits;
    const contents = this.preProcessor ? this.#preProcessed() : this;
    if (!this.saveOnBlank && contents.size === 0) return false;
    // O(changes) at exit too: append to the journal when the saved state allows it.
    const journal = this.preProcessor ? undefined : this.journalWriter(this.saver);
    if (journal !== undefined && this.#log.tracking && !(this.#log.all && this.#log.reset)) {
      const appended = journal.appendSync(this.#record(new Set(this.#log.keys ?? []), this.#log.deletes, this.#log.all));
      if (appended !== undefined) {
        this.#log.forget(super.size);
        this.#lastSaveBytes = appended.bytes;
        this.#savedEdits = edits;
        return true;
      }
    }
    this.#lastSaveBytes = write(this.#snapshotOf(contents));
    this.#log.forget(super.size);
    this.#savedEdits = edits;
    return true;
  }

  /**
   * The exit flush of a custom saver: called synchronously with a copy, as save() would. One
   * known to be asynchronous (an `async` function, or one that returned a promise before) is not
   * called: nothing it starts could finish, and a write cut short could damage what it saved
   * before. Either way the caller hears of edits that may be lost.
   */
  #flushCustomSync(): boolean {
    const saver = this.saver;
    if (saver === null) return false;
    const lost = (why: string) =>
      new DepcacheError('EEXIT', `${this.name}: not saved at exit: ${why} (${this.dirtyEdits} unsaved edits); await cache.save() before process.exit(), or let the script end by itself`);
    if (isAsyncSaver(saver)) throw lost('its saver is asynchronous, and nothing asynchronous runs once process.exit() is called or the process crashes');
    const edits = this.#edits;
    const contents = this.preProcessor ? this.#preProcessed() : this.#visibleCopy();
    if (!this.saveOnBlank && contents.size === 0) return false;
    let result: unknown;
    try {
      result = saver(this.name, contents);
    } catch (err) {
      throw new CacheHookError(this.name, 'saver', err);
    }
    if (isThenable(result)) {
      asyncSavers.add(saver);
      result.then(undefined, () => undefined); // it cannot be awaited here: never an unhandled rejection
      throw lost('its saver returned a promise, which cannot be awaited at exit');
    }
    this.#log.forget(super.size);
    this.#savedEdits = edits;
    return true;
  }

  /** The exit flush through a store: its saveSync, or a report that the edits are lost. */
  #flushStoreSync(store: CacheStore): boolean {
    const saveSync = store.saveSync;
    if (saveSync === undefined) {
      throw new DepcacheError(
        'EEXIT',
        `${this.name}: not saved at exit: its store has no saveSync, and nothing asynchronous runs once process.exit() is called or the process crashes (${this.dirtyEdits} unsaved edits); await cache.save() before process.exit(), or let the script end by itself`,
      );
    }
    const contents = this.preProcessor ? this.#preProcessed() : this;
    if (!this.saveOnBlank && contents.size === 0) return false;
    const edits = this.#edits;
    const taken = this.#log.take(super.size);
    try {
      const plan = this.#planStoreSave(store, taken, contents);
      saveSync.call(store, this.name, { mode: plan.mode, generation: this.#generation, bound: plan.bound, batches: () => syncBatches(plan.source) });
    } catch (err) {
      this.#log.restore(taken);
      throw err instanceof DepcacheError ? err : new CacheHookError(this.name, 'saver', err);
    }
    this.#savedEdits = edits;
    return true;
  }

  /**
   * What a save through a store writes: everything (a whole save, replacing the saved state),
   * every entry as changes (contents that merge with what another process saved), or the
   * changed keys, each read as it was when the save began.
   */
  #planStoreSave(store: CacheStore, taken: TakenChanges<K>, contents: Map<K, V>): { mode: 'whole' | 'changes'; source: ChangeSource; bound: number; readers: Preserver[] } {
    if (contents !== this || !store.capabilities.changes || !this.#log.tracking || (taken.all && taken.reset)) {
      const live = this.#snapshotOf(contents);
      return { mode: 'whole', source: { fill: (sets, _deletes, max) => live.fill(sets, max) }, bound: live.size, readers: contents === this ? [live] : [] };
    }
    const candidates = taken.deletes.length === 0 ? taken.keys : taken.keys.concat(taken.deletes);
    if (taken.all) {
      const live = this.#snapshotOf(this);
      return { mode: 'changes', source: new AllChangesSource(live, candidates), bound: super.size + taken.deletes.length, readers: [live] };
    }
    const changes = new ChangeSnapshot(this, candidates, this.#generation, this.#saveTransform(true));
    return { mode: 'changes', source: changes, bound: candidates.length, readers: [changes] };
  }

  /** A save through a store (the `store` option), read in slices; on failure the changes are unsaved again. */
  async #saveThroughStore(store: CacheStore, contents: Map<K, V>): Promise<void> {
    const taken = this.#log.take(super.size);
    if (contents === this && this.#log.tracking && !taken.all && taken.keys.length === 0 && taken.deletes.length === 0) return;
    const plan = this.#planStoreSave(store, taken, contents);
    for (const reader of plan.readers) this.#openReader(reader);
    this.#inflight = taken;
    try {
      await this.#callHook('saver', () =>
        store.save(this.name, { mode: plan.mode, generation: this.#generation, bound: plan.bound, batches: () => slicedBatches(plan.source) }),
      );
    } catch (err) {
      if (this.#inflight === taken) this.#log.restore(taken);
      throw err;
    } finally {
      if (this.#inflight === taken) this.#inflight = null;
      for (const reader of plan.readers) this.#closeReader(reader);
    }
  }

  /** The loader of a cache with a store: its contents, the onCorrupt policy applied to a damaged state. */
  async #loadFromStore(store: CacheStore, name: string): Promise<StoredMap | undefined> {
    let contents;
    try {
      contents = await store.load(name);
    } catch (err) {
      // A file of a newer format is not damage: it is never moved aside.
      if (!(err instanceof CorruptCacheFileError) || err.code === 'EFORMAT_VERSION' || this.corruptPolicy !== 'quarantine' || store.quarantine === undefined) throw err;
      const where = await store.quarantine(name);
      this.manager.reportError(new CorruptCacheFileError(name, err.path, 'the saved state is damaged', { code: err.code as 'ECORRUPT', quarantinedTo: where, cause: err }));
      return undefined;
    }
    if (contents === undefined || contents === null) return undefined;
    return fromStored(contents, store.constructor?.name ?? 'store', name);
  }

  /** Whether {@link readStoreSync} can read: the loader is the store's, and the store has loadSync. @internal */
  protected get canReadStoreSync(): boolean {
    return this.#store?.loadSync !== undefined && this.loader !== null && this.loader === this.#storeLoader;
  }

  /** The store's contents, read synchronously (see {@link canReadStoreSync}); undefined: nothing saved. @internal */
  protected readStoreSync(): StoredMap | undefined {
    const store = this.#store as CacheStore;
    const contents = (store.loadSync as NonNullable<CacheStore['loadSync']>).call(store, this.name);
    return contents === undefined || contents === null ? undefined : fromStored(contents, store.constructor?.name ?? 'store', this.name);
  }

  /** What a damaged saved state does on load (see PersistentCache's `onCorrupt`). @internal */
  protected get corruptPolicy(): 'quarantine' | 'throw' {
    return 'throw';
  }

  /**
   * Whether this cache's unsaved edits can only be saved by awaiting its saver (a custom
   * asynchronous one, or a store shared with other processes): the exit flush saves those when
   * the event loop empties and on a signal, before the synchronous flush at exit. @internal
   */
  get savesAsyncAtExit(): boolean {
    const saver = this.saver;
    if (saver === null) return false;
    if (saver === this.#storeSaver) return (this.#store as CacheStore).saveSync === undefined;
    return CHANGE_SAVER in saver || this.syncSnapshotWriter(saver) === undefined;
  }

  /**
   * Replaces the entries in place with `contents`, as unsaved edits (registerCache with
   * contents on an existing cache). @internal
   */
  adoptContents(contents: Contents<K, V>): void {
    const map = toMap<K, V>(contents, this.name, 'contents');
    if (this.#hasContents) (this.#behaviour as this).clear.call(this);
    this.#replaceWith(map, true);
    this.#setGeneration(newGeneration());
    this.#trimToMax();
    this.#edits += Math.max(1, map.size);
    if (this.#edits >= this.#editTrigger) this.editThresholdReached();
  }

  /** Starts recording which keys change between saves, for a saver that writes only those. @internal */
  trackChanges(allOnOverflow = false): void {
    this.#log.track(allOnOverflow);
  }

  /**
   * One save's journal record, with values as they are now: the changed keys, or with `all`
   * every entry, plus the keys deleted (those logged and not present now).
   */
  #record(keys: ReadonlySet<K>, deleted: readonly K[], all: boolean): JournalRecord {
    const sets: unknown[] = [];
    const deletes: unknown[] = [];
    const transform = this.#saveTransform(true); // reads this Map: slots, when expiring
    const put = (key: unknown, value: unknown) => {
      const saved = transform === null ? value : transform(key, value);
      if (saved === SKIP_ENTRY) deletes.push(key);
      else sets.push(key, saved);
    };
    if (all) {
      Map.prototype.forEach.call(this, (value: unknown, key: unknown) => put(key, value));
      for (const key of new Set([...keys, ...deleted])) if (!super.has(key)) deletes.push(key);
    } else {
      for (const key of keys) {
        if (super.has(key)) put(key, super.get(key));
        else deletes.push(key);
      }
    }
    return { sets, deletes, generation: this.#generation };
  }

  /**
   * Applies what another process saved, key by key, in this cache's queue: `records` in order,
   * or a `whole` saved state (keys it lacks are removed). Keys edited here and not saved yet
   * are left alone (this process's save will write them); nothing applied counts as an edit.
   */
  protected mergeSaved(
    read: () => Promise<{ records: JournalRecord[] } | { parts: AsyncIterable<JournalRecord> } | { whole: DecodedEntries | Map<unknown, unknown> } | undefined>,
  ): Promise<boolean> {
    return this.#exclusive(async () => {
      if (!this.#hasContents || !this.#log.tracking) return false;
      const update = await read();
      if (update === undefined) return false;
      let dirty: Set<unknown> = this.#log.unsavedKeys();
      if (this.#log.all) return false; // everything here is unsaved: this save decides
      const now = this.#clock();
      let applied = false;
      const apply = (key: unknown, value: unknown, remove: boolean) => {
        if (dirty.has(key)) return;
        applied = true;
        this.#snapshot?.preserve(key);
        let at = Number.POSITIVE_INFINITY;
        if (!remove && typeof value === 'object' && value !== null && isExpiryEnvelope(value)) {
          this.#enableExpiry();
          at = value[EXPIRES_FIELD];
          value = value.value;
        }
        const book = this.#book;
        if (book === null) {
          if (remove) super.delete(key as K);
          else super.set(key as K, value as V);
          return;
        }
        const slot = super.get(key as K) as number | undefined;
        if (remove || at <= now) {
          if (slot === undefined) return;
          super.delete(key as K);
          book.free(slot);
        } else if (slot === undefined) super.set(key as K, book.add(key, value, at) as V);
        else book.update(slot, value, at);
      };
      // Applied in slices, yielding to the event loop: a merge of a million keys is not one
      // stall. Keys edited here meanwhile are unsaved edits, and stay; once everything here
      // counts as unsaved (a clear), the merge stops, as it would not have started.
      let sliceStart = performance.now();
      let editsSeen = this.#edits;
      let sinceCheck = 0;
      // After any await: false once the merge must stop; keys edited meanwhile count as dirty.
      const refresh = (): boolean => {
        if (this.#edits === editsSeen) return true;
        editsSeen = this.#edits;
        if (this.#log.all || !this.#hasContents) return false;
        dirty = this.#log.unsavedKeys();
        return true;
      };
      const paced = async (): Promise<boolean> => {
        if (++sinceCheck < MERGE_CHECK_EVERY) return true;
        sinceCheck = 0;
        if (performance.now() - sliceStart < MERGE_SLICE_MS) return true;
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
        return refresh();
      };
      const merge = async (): Promise<boolean> => {
        let generation: string | undefined;
        const applyRecord = async (record: JournalRecord): Promise<boolean> => {
          const { sets, deletes } = record;
          for (let i = 0; i < sets.length; i += 2) {
            apply(sets[i], sets[i + 1], false);
            if (!(await paced())) return false;
          }
          for (const key of deletes) {
            apply(key, undefined, true);
            if (!(await paced())) return false;
          }
          if (record.generation !== undefined) generation = record.generation;
          return true;
        };
        if ('records' in update) {
          for (const record of update.records) if (!(await applyRecord(record))) return false;
        } else if ('parts' in update) {
          for await (const record of update.parts) if (!refresh() || !(await applyRecord(record))) return false;
        } else {
          const saved = update.whole;
          const seen = new Set<unknown>();
          if (saved instanceof DecodedEntries) {
            for (const pairs of saved.batches) {
              for (let i = 0; i < pairs.length; i += 2) {
                seen.add(pairs[i]);
                apply(pairs[i], pairs[i + 1], false);
                if (!(await paced())) return false;
              }
            }
            for (const record of saved.records) {
              for (let i = 0; i < record.sets.length; i += 2) seen.add(record.sets[i]);
              for (const key of record.deletes) seen.delete(key);
              if (!(await applyRecord(record))) return false;
            }
            generation = saved.meta.generation;
          } else {
            for (const [key, value] of saved) {
              seen.add(key);
              apply(key, value, false);
              if (!(await paced())) return false;
            }
            if (saved instanceof StoredMap) generation = saved.generation;
          }
          // Keys the saved state lacks are removed (walking the live map: a key added meanwhile is an unsaved edit, kept).
          for (const key of super.keys()) {
            if (!seen.has(key)) apply(key, undefined, true);
            if (!(await paced())) return false;
          }
        }
        if (generation !== undefined) this.#setGeneration(generation);
        this.#armPurge();
        this.#trimToMax();
        return true;
      };
      try {
        return await merge();
      } finally {
        // Readers that keep derived state (memoize's index) see a change, even of a merge that stopped partway.
        if (applied) this.#merges++;
      }
    }, 'mergeSaved');
  }

  /**
   * Runs `fn` in this cache's queue (no load, save or merge meanwhile) with a source of
   * copy-on-write snapshots of memory, which offers one only while nothing here is unsaved:
   * then memory is exactly the saved state, and a store may write it instead of reading files.
   */
  protected withMemorySnapshots<T>(fn: (source: MemorySnapshotSource) => Promise<T>, operation: string): Promise<T> {
    return this.#exclusive(
      () =>
        fn(async (write) => {
          const unsaved = this.#log.hasUnsaved;
          if (!this.#hasContents || !this.#log.tracking || this.dirtyEdits !== 0 || unsaved || this.#snapshot !== null) return false;
          // Memory is not what is saved when a processor shapes what is loaded or saved.
          if (this.preProcessor !== null || this.postProcessor !== null) return false;
          const snapshot = this.#snapshotOf(this);
          this.#openReader(snapshot);
          try {
            await write(snapshot);
            return true;
          } finally {
            this.#closeReader(snapshot);
          }
        }),
      operation,
    );
  }

  /** Starts `fn` as background work of its own, outside the operation that calls this. */
  protected detached<T>(fn: () => Promise<T>): Promise<T> {
    return outsideOperations(fn);
  }

  /**
   * Starts `fn` as background work of this cache, after the operation running now and outside
   * it, with a source of memory snapshots (see {@link withMemorySnapshots}): a compaction, a
   * store's snapshot. A failure is reported; the manager's close waits for it. @internal
   */
  inBackground(operation: string, fn: (source: MemorySnapshotSource) => Promise<unknown>): void {
    const job: Promise<void> = this.detached(() => this.withMemorySnapshots(fn, operation))
      .then(() => undefined, (err: unknown) => this.manager.reportError(err))
      .finally(() => this.#background.delete(job));
    this.#background.add(job);
  }

  /**
   * Resolves when the background work this cache started (a compaction after a save) is over;
   * the manager's close waits for it. @internal
   */
  async backgroundSettled(): Promise<void> {
    while (this.#background.size > 0) await Promise.all(this.#background);
  }

  /** Stops background work (timers) for good; the manager calls this on close. @internal */
  dispose(): void {
    if (this.#purgeTimer !== undefined) clearTimeout(this.#purgeTimer);
    this.#purgeTimer = undefined;
  }

  // ----- For subclasses -----

  /**
   * Called when a read or write finds no contents; returning true means contents are there now
   * (LazyCache builds here). The default says no, and the access throws.
   */
  protected contentsMissing(): boolean {
    return false;
  }

  /** Called from set/delete/clear once the edit count reaches {@link editTrigger}. */
  protected editThresholdReached(): void {}

  /** Edits ever made; only grows. */
  protected get editCount(): number {
    return this.#edits;
  }

  /** Edit count at which {@link editThresholdReached} runs next. */
  protected get editTrigger(): number {
    return this.#editTrigger;
  }
  protected set editTrigger(value: number) {
    this.#editTrigger = value;
  }

  /** Called after load, save, build and deleteSavedContent succeed. */
  protected stateSettled(_event: 'load' | 'save' | 'build' | 'delete'): void {}

  /** A writer that reads the live map copy-on-write, when `saver` allows it. */
  protected snapshotWriter(_saver: Saver<K, V> | null): SnapshotWriter | undefined {
    return undefined;
  }

  /** Appends of changes, when `saver` writes to a journaling store (the default file store). */
  protected journalWriter(_saver: Saver<K, V> | null): JournalWriter | undefined {
    return undefined;
  }

  /** A synchronous writer for the exit path, when `saver` allows it. */
  protected syncSnapshotWriter(_saver: Saver<K, V> | null): ((s: EntrySnapshot) => number) | undefined {
    return undefined;
  }

  // ----- Internals (cold path: clarity first) -----

  /** Throws unless the cache has contents (or a subclass just built them). @internal */
  requireContents(): void {
    if (!this.#hasContents && !this.contentsMissing()) {
      throw new CacheContentsMissingError(this.name);
    }
  }

  #setHasContents(has: boolean): void {
    if (has === this.#hasContents) return;
    this.#hasContents = has;
    this.#applyPrototype();
  }

  /**
   * Refuses every write from now on with ManagerClosedError (the manager closed: nothing could
   * save it); reads keep working. Costs `set` nothing: the methods that throw live on a twin
   * prototype, as for a cache without contents. @internal
   */
  refuseWrites(): void {
    this.#writable = false;
    this.#applyPrototype();
  }

  #applyPrototype(): void {
    const real = this.#book === null ? this.#realPrototype : CacheMap.#expiringTwin(this.#realPrototype);
    let proto = this.#hasContents ? real : missingContentsPrototype(real);
    if (!this.#writable) proto = closedPrototype(proto);
    this.#behaviour = proto;
    if (!this.#subclassed) Object.setPrototypeOf(this, proto);
  }

  /**
   * A user's subclass keeps its prototype (so its overrides run, and their `super` calls), and
   * gets, once, a layer under its topmost class whose methods dispatch to the behaviour of the
   * cache's state, as the twin prototypes give our own classes without a call more.
   */
  static #dispatchBelow(userPrototype: object, library: object): void {
    let top = userPrototype;
    for (let above = Object.getPrototypeOf(top) as object; above !== library; above = Object.getPrototypeOf(top) as object) {
      if (dispatchLayers.has(above)) return; // this class got its layer already
      top = above;
    }
    const layer = Object.create(library) as Record<string | symbol, unknown>;
    for (const name of [...GUARDED, 'has', inspect.custom]) {
      Object.defineProperty(layer, name, {
        configurable: true,
        writable: true,
        value: function dispatched(this: CacheMap<unknown, unknown>, ...args: unknown[]): unknown {
          const own = (this.#behaviour as Record<string | symbol, ((...a: unknown[]) => unknown) | undefined>)[name];
          // No inspect hook of its own (no expiry): shown as the Map it is.
          if (own === undefined && name === inspect.custom) return `${this.constructor.name} ${inspect(new Map(Map.prototype.entries.call(this)), args[1] as InspectOptions)}`;
          return own?.apply(this, args);
        },
      });
    }
    Object.setPrototypeOf(top, layer);
    dispatchLayers.add(layer);
  }

  /** The error for a call into this queue from inside this cache's running operation, if it is one. */
  #reentry(operation: string): ReentrantCallError | undefined {
    return this.#queue.calledFromInside ? new ReentrantCallError(this.name, operation) : undefined;
  }

  #exclusive<T>(fn: () => Promise<T>, operation: string): Promise<T> {
    this.manager.assertOpen();
    const reentry = this.#reentry(operation);
    if (reentry) return Promise.reject(reentry);
    return this.#queue.run(fn);
  }

  async #loadNow(): Promise<boolean> {
    const loader = this.loader;
    const raw = loader ? await this.#callHook('loader', () => loader(this.name)) : undefined;
    const loaded = this.#toLoaded(raw);
    if (loaded === null) return this.#settleLoad(false, 'missing');
    const validator = this.validator;
    if (validator && !(await this.#isValid(validator, loaded as Map<K, V>))) {
      return this.#settleLoad(false, 'invalid');
    }
    return this.#commitLoaded(loaded, savedGeneration(raw));
  }

  /**
   * The synchronous load pipeline, for loaders that already hold the data (loadSync).
   * @throws {TypeError} when the validator is asynchronous
   */
  protected applyLoadedSync(raw: unknown): boolean {
    this.manager.assertOpen();
    const loaded = this.#toLoaded(raw);
    if (loaded === null) return this.#settleLoad(false, 'missing');
    const validator = this.validator;
    if (validator) {
      let valid: unknown;
      try {
        valid = validator(loaded as Map<K, V>);
      } catch {
        valid = false;
      }
      if (valid instanceof Promise) {
        valid.catch(() => undefined);
        throw new TypeError(`${this.name}: a synchronous load needs a synchronous validator`);
      }
      if (valid !== true) return this.#settleLoad(false, 'invalid');
    }
    return this.#commitLoaded(loaded, savedGeneration(raw));
  }

  /**
   * Builds synchronously (LazyCache's first access): builder → postProcessor → replace.
   * Does not save. @throws {TypeError} when the builder returns a Promise
   */
  protected buildSync(): void {
    this.manager.assertOpen();
    const builder = this.builder;
    let raw: unknown = new Map<K, V>();
    if (builder) {
      try {
        raw = builder(this.name);
      } catch (err) {
        throw new CacheHookError(this.name, 'builder', err);
      }
      if (raw instanceof Promise) {
        raw.catch(() => undefined);
        throw new TypeError(`${this.name}: a lazy build needs a synchronous builder`);
      }
    }
    let contents = toMap<K, V>(raw, this.name, 'builder');
    if (this.postProcessor) contents = this.#process('postProcessor', this.postProcessor, contents);
    this.#replaceWith(contents, true);
    this.#setGeneration(newGeneration());
    this.#trimToMax();
    this.#edits++;
    this.#builds++;
    this.stateSettled('build');
    this.manager.notify('build', { cache: this.name });
  }

  /** Decoded file entries stay as they are when nothing needs a Map; null means nothing saved. */
  #toLoaded(raw: unknown): Map<K, V> | DecodedEntries | null {
    if (raw === undefined || raw === null) return null;
    if (raw instanceof DecodedEntries && !this.validator && !this.postProcessor) return raw;
    return toMap<K, V>(raw, this.name, 'loader');
  }

  #commitLoaded(loaded: Map<K, V> | DecodedEntries, generation: string): boolean {
    let contents = loaded;
    const postProcessor = this.postProcessor;
    if (postProcessor && contents instanceof Map) {
      contents = this.#process('postProcessor', postProcessor, contents);
    }
    this.#replaceWith(contents);
    this.#setGeneration(generation);
    return this.#settleLoad(true);
  }

  #setGeneration(generation: string): void {
    if (generation === this.#generation) return;
    this.#generation = generation;
    generationChanges++;
  }

  #settleLoad(loaded: boolean, reason?: 'missing' | 'invalid'): boolean {
    this.#foundNothingSaved = reason === 'missing';
    if (!loaded) {
      super.clear();
      this.#book?.clear();
      this.#setHasContents(false);
    }
    this.#savedEdits = this.#edits;
    this.#log.settleLoad(loaded, super.size); // loaded: memory equals the store
    this.#loads++;
    if (loaded) this.#trimToMax(); // after the reset: evictions are edits to save
    this.stateSettled('load');
    this.manager.notify('load', { cache: this.name, loaded, reason });
    return loaded;
  }

  async #isValid(validator: Validator<K, V>, contents: Map<K, V>): Promise<boolean> {
    try {
      return (await validator(contents)) === true;
    } catch {
      return false; // a throwing validator means "invalid", as in CacheMan
    }
  }

  async #saveNow(): Promise<boolean> {
    const saver = this.saver;
    if (!this.#hasContents || !saver) return false;
    const started = performance.now();
    const edits = this.#edits;
    const liveWriter = this.snapshotWriter(saver);
    const changeWriter = (saver as Partial<ChangeSaver<K, V>>)[CHANGE_SAVER];
    let bytes: number | undefined;
    let detail: unknown;
    if (saver === this.#storeSaver) {
      const contents = this.preProcessor ? this.#preProcessed() : this;
      if (!this.saveOnBlank && contents.size === 0) return false;
      await this.#saveThroughStore(this.#store as CacheStore, contents);
    } else if (changeWriter && !this.preProcessor) {
      if (!this.saveOnBlank && super.size === 0) return false;
      detail = await this.#writeChanges(changeWriter);
    } else if (this.preProcessor) {
      const contents = this.#preProcessed();
      if (!this.saveOnBlank && contents.size === 0) return false;
      if (liveWriter) bytes = await liveWriter(this.#snapshotOf(contents));
      else await this.#callHook('saver', () => noteAsync(saver, saver(this.name, contents)));
      this.#log.forget(super.size); // a pre-processed cache is always written whole
    } else {
      if (!this.saveOnBlank && super.size === 0) return false;
      const journal = liveWriter ? this.journalWriter(saver) : undefined;
      if (journal !== undefined && this.#log.tracking) bytes = await this.#saveThroughJournal(journal, liveWriter as SnapshotWriter);
      else if (liveWriter) bytes = await this.#writeLiveSnapshot(liveWriter);
      else {
        const copy = this.#visibleCopy();
        await this.#callHook('saver', () => noteAsync(saver, saver(this.name, copy)));
      }
    }
    this.#savedEdits = Math.max(this.#savedEdits, edits);
    this.#saves++;
    this.#lastSaveAt = Date.now();
    this.#lastSaveMs = performance.now() - started;
    this.#lastSaveBytes = bytes;
    this.stateSettled('save');
    this.manager.notify('save', { cache: this.name, durationMs: this.#lastSaveMs, bytes });
    this.manager.announce('save', this.name, false, detail); // after the data is there, so followers see it
    return true;
  }

  /**
   * A save of a journaling store: appends the changed entries (values as they are now, before
   * any await), or every entry when all changed without replacing the saved state (new contents
   * built while another process saved: they merge). Writes the whole file when the saved state
   * is to be replaced (a clear, adopted contents) or there is none to append to.
   */
  async #saveThroughJournal(journal: JournalWriter, whole: SnapshotWriter): Promise<number> {
    const taken = this.#log.take(super.size);
    if (!taken.all && taken.keys.length === 0 && journal.hasBase()) return 0; // nothing changed
    this.#inflight = taken;
    try {
      // Decided before any await, so a whole write still snapshots the map as the save began.
      if (taken.all && taken.reset) return await this.#writeLiveSnapshot(whole);
      // Everything else merges with the saved state. The record is read part by part, as the
      // map was when the save began (copy-on-write), so no O(n) work happens here in one go;
      // the whole map is offered too when the store may write it instead (see saveChanges).
      const candidates = taken.deletes.length === 0 ? taken.keys : taken.keys.concat(taken.deletes);
      const bound = taken.all ? super.size + taken.deletes.length : candidates.length;
      const live = taken.all || journal.mayWriteWhole(bound, taken.all) ? this.#snapshotOf(this) : undefined;
      const changes = taken.all ? undefined : new ChangeSnapshot(this, candidates, this.#generation, this.#saveTransform(true));
      const source = changes ?? new AllChangesSource(live as LiveSnapshot, candidates);
      if (live !== undefined) this.#openReader(live);
      if (changes !== undefined) this.#openReader(changes);
      let result: SaveResult | undefined;
      try {
        result = await this.#callHook('saver', () => journal.saveChanges({ source, bound, all: taken.all, whole: live }));
      } finally {
        if (live !== undefined) this.#closeReader(live);
        if (changes !== undefined) this.#closeReader(changes);
      }
      if (result === undefined) {
        // The file vanished after this save began (a delete elsewhere): nothing to merge with.
        const written = await this.#writeLiveSnapshot((snapshot) => journal.writeIfNoBase(snapshot) as Promise<number>);
        if (written === undefined) throw new DepcacheError('EIO', `${this.name}: the saved file changed during the save; save again`);
        return written;
      }
      if (!result.whole) journal.afterAppend(result);
      return result.bytes;
    } catch (err) {
      if (this.#inflight === taken) this.#log.restore(taken);
      throw err;
    } finally {
      if (this.#inflight === taken) this.#inflight = null;
    }
  }

  /** Starts keeping old values for a reader of the live map (a save's, a compaction's). */
  #openReader(reader: Preserver): void {
    this.#readers.push(reader);
    this.#snapshot = this.#readers.length === 1 ? reader : new PreserverFan([...this.#readers]);
  }

  #closeReader(reader: Preserver): void {
    const i = this.#readers.indexOf(reader);
    if (i >= 0) this.#readers.splice(i, 1);
    const n = this.#readers.length;
    this.#snapshot = n === 0 ? null : n === 1 ? (this.#readers[0] as Preserver) : new PreserverFan([...this.#readers]);
  }

  /** Hands the changed keys to a change-saver; on failure they are merged back for the retry. */
  async #writeChanges(write: ChangeSaver<K, V>[typeof CHANGE_SAVER]): Promise<unknown> {
    const taken = this.#log.take(super.size);
    const changes = new Set(taken.keys);
    for (const key of taken.deletes) changes.add(key);
    this.#inflight = taken;
    try {
      return await this.#callHook('saver', () => write(this.name, this.#persistedView(), { all: taken.all, reset: taken.reset, keys: changes }));
    } catch (err) {
      if (this.#inflight === taken) this.#log.restore(taken);
      throw err;
    } finally {
      if (this.#inflight === taken) this.#inflight = null;
    }
  }

  /** The live map, frozen at this moment: the snapshot keeps old values of entries changed later. */
  async #writeLiveSnapshot(writer: SnapshotWriter): Promise<number> {
    const snapshot = this.#snapshotOf(this);
    this.#openReader(snapshot);
    try {
      return await writer(snapshot);
    } finally {
      this.#closeReader(snapshot);
    }
  }

  #preProcessed(): Map<K, V> {
    // The pre-processor gets a copy: it shapes what is saved, never memory.
    const copy = this.#visibleCopy();
    return this.#process('preProcessor', this.preProcessor as Processor<K, V>, copy);
  }

  /** A plain copy of the entries, without expired ones (a user's saver gets values only). */
  #visibleCopy(): Map<K, V> {
    const copy = new Map<K, V>();
    if (this.#book === null) fillMap(copy, this, this.name, 'cache');
    else (this.#behaviour as this).forEach.call(this, (value: V, key: K) => copy.set(key, value));
    return copy;
  }

  async #deleteNow(): Promise<void> {
    const deleter = this.deleter;
    if (deleter) await this.#callHook('deleter', () => deleter(this.name));
    // Memory stays; it no longer counts as pending edits of a saved state that is gone.
    this.#savedEdits = this.#edits;
    this.#log.markAll(true);
    this.stateSettled('delete');
    this.manager.notify('delete', { cache: this.name });
  }

  async #produceBuilt(): Promise<Map<K, V>> {
    const builder = this.builder;
    const raw = builder ? await this.#callHook('builder', () => builder(this.name)) : new Map<K, V>();
    let contents = toMap<K, V>(raw, this.name, 'builder');
    const postProcessor = this.postProcessor;
    if (postProcessor) contents = this.#process('postProcessor', postProcessor, contents);
    return contents;
  }

  /** `replaces`: the built contents replace the saved state (false: they merge with it). */
  async #installBuilt(contents: Map<K, V>, replaces = true): Promise<void> {
    this.#replaceWith(contents, true);
    if (this.#log.tracking) this.#log.reset ||= replaces;
    this.#setGeneration(newGeneration());
    this.#trimToMax();
    // The built contents are unsaved until the save below succeeds.
    this.#edits++;
    this.#builds++;
    this.stateSettled('build');
    this.manager.notify('build', { cache: this.name });
    await this.#saveNow();
  }

  #replaceWith(contents: Map<K, V> | DecodedEntries, fresh = false): void {
    this.#log.markAll(false); // a load settles this back to "nothing changed"
    // Only adoptContents() can get here while a save reads the map; keep what it must write.
    const snapshot = this.#snapshot;
    if (snapshot !== null) {
      snapshot.preserveAll();
      for (const [key] of contents) snapshot.preserve(key);
    }
    super.clear();
    fillMap(this, contents, this.name, 'loader');
    this.#setHasContents(true);
    this.#expiryAfterReplace(fresh);
  }

  #process(hook: HookName, processor: Processor<K, V>, input: Map<K, V>): Map<K, V> {
    let out: unknown;
    try {
      out = processor(input);
    } catch (err) {
      throw new CacheHookError(this.name, hook, err);
    }
    return out === undefined || out === input ? input : toMap<K, V>(out, this.name, hook);
  }

  async #callHook<T>(hook: HookName, fn: () => MaybePromise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DepcacheError) throw err;
      throw new CacheHookError(this.name, hook, err);
    }
  }
}

// Custom savers seen to return a promise: the exit flush cannot await them.
const asyncSavers = new WeakSet<object>();

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


// The dispatch layers put under users' subclasses, one per topmost subclass.
const dispatchLayers = new WeakSet<object>();

/** The prototype of the nearest of our classes at or above `proto` (a user's subclass sits above it). */
function libraryPrototype(proto: object): object {
  let p: object | null = proto;
  // Its own constructor: a dispatch layer inherits the one of the class it sits on.
  while (p !== null && p !== CacheMap.prototype && !(Object.hasOwn(p, 'constructor') && isDeclaredClass((p as { constructor?: unknown }).constructor))) {
    p = Object.getPrototypeOf(p) as object | null;
  }
  return p ?? CacheMap.prototype;
}

// One twin per concrete class prototype: same methods, each first demanding contents.
const missingPrototypes = new WeakMap<object, object>();
const GUARDED: Array<string | symbol> = ['get', 'set', 'delete', 'clear', 'forEach', 'keys', 'values', 'entries', Symbol.iterator];

function missingContentsPrototype(real: object): object {
  let twin = missingPrototypes.get(real);
  if (twin) return twin;
  twin = Object.create(real) as object;
  for (const method of GUARDED) {
    const impl = (real as Record<string | symbol, (...args: unknown[]) => unknown>)[method] as (
      ...args: unknown[]
    ) => unknown;
    Object.defineProperty(twin, method, {
      configurable: true,
      writable: true,
      value: function guarded(this: CacheMap<unknown, unknown>, ...args: unknown[]): unknown {
        this.requireContents();
        return impl.apply(this, args);
      },
    });
  }
  missingPrototypes.set(real, twin);
  return twin;
}

// One twin per prototype (real or missing-contents) for caches whose manager closed.
const closedPrototypes = new WeakMap<object, object>();
const WRITES = ['set', 'delete', 'clear'] as const;

function closedPrototype(base: object): object {
  let twin = closedPrototypes.get(base);
  if (twin) return twin;
  twin = Object.create(base) as object;
  for (const method of WRITES) {
    Object.defineProperty(twin, method, {
      configurable: true,
      writable: true,
      value: function refused(this: AnyCacheMap): never {
        throw new ManagerClosedError(this.manager.name, this.name);
      },
    });
  }
  closedPrototypes.set(base, twin);
  return twin;
}


/**
 * The body of every class's `open()`: the registered cache of that name when it is of the same
 * class (given contents replace its entries, as unsaved edits), else a new one; then
 * `loadOrBuild()` unless it has contents. @internal
 */
export async function openCache<C extends AnyCacheMap>(
  cls: abstract new (...args: never[]) => C,
  name: string,
  options: { readonly manager?: CacheManager; readonly contents?: unknown } | undefined,
  create: () => C,
): Promise<C> {
  checkOptionsObject(typeof name === 'string' ? name : 'open', options, undefined);
  const manager = options?.manager ?? getCacheManager();
  let cache: C;
  if (typeof name === 'string' && manager instanceof CacheManager && manager.cacheRegistered(name)) {
    const registered = manager.getCache(name);
    if (registered.constructor !== cls) {
      throw new CacheConflictError(name, manager.name, registered.constructor.name, cls.name);
    }
    cache = registered as C;
    if (options?.contents !== undefined) cache.adoptContents(options.contents as Contents<unknown, unknown>);
  } else cache = create();
  if (!cache.hasContents) await cache.loadOrBuild();
  return cache;
}

/** Runs `loadOrBuild()` on a new cache unless it has contents. @internal */
export async function opened<C extends AnyCacheMap>(cache: C): Promise<C> {
  if (!cache.hasContents) await cache.loadOrBuild();
  return cache;
}

/** The types of the options every cache takes (names are checked by checkOptionsObject). */
function checkCacheOptions(name: string, options: Readonly<Record<string, unknown>>): void {
  if (options.manager !== undefined && !(options.manager instanceof CacheManager)) {
    throw new TypeError(`${name}: manager: expected a CacheManager, got ${describeValue(options.manager)}`);
  }
  for (const hook of HOOKS) checkHook(name, hook, options[hook]);
  checkBoolean(name, 'saveOnBlank', options.saveOnBlank);
  const { dependents } = options;
  if (dependents !== undefined) {
    if (typeof dependents !== 'object' || dependents === null || !(Symbol.iterator in dependents) || typeof dependents === 'string') {
      throw new TypeError(`${name}: dependents: expected an iterable of cache names or caches, got ${describeValue(dependents)}`);
    }
    for (const d of dependents as Iterable<unknown>) {
      if (typeof d !== 'string' && !(d instanceof CacheMap)) {
        throw new TypeError(`${name}: dependents: expected cache names or caches, got ${describeValue(d)}`);
      }
    }
  }
}

const HOOKS = ['loader', 'saver', 'deleter', 'builder', 'validator', 'preProcessor', 'postProcessor'] as const;

declareOptions(CacheMap, ['manager', 'contents', 'dependents', 'saveOnBlank', 'ttlMs', 'maxEntries', 'clock', 'store', ...HOOKS]);

/** The `store` option, checked: an object with the methods and capabilities of a CacheStore. */
function checkStore(name: string, options: CacheOptions<unknown, unknown>): CacheStore | null {
  const store = options.store as unknown;
  if (store === undefined) return null;
  const shape = store as Partial<Record<string, unknown>> | null;
  if (typeof store !== 'object' || shape === null) throw new TypeError(`${name}: store: expected a CacheStore, got ${describeValue(store)}`);
  for (const method of ['load', 'save', 'remove'] as const) {
    if (typeof shape[method] !== 'function') throw new TypeError(`${name}: store: expected a CacheStore with a ${method}() method`);
  }
  for (const method of ['saveSync', 'loadSync', 'quarantine', 'follow'] as const) {
    if (shape[method] !== undefined && typeof shape[method] !== 'function') throw new TypeError(`${name}: store: ${method}: expected a function, got ${describeValue(shape[method])}`);
  }
  const caps = shape.capabilities as Partial<Record<string, unknown>> | undefined;
  if (typeof caps !== 'object' || caps === null || !['expiry', 'generations', 'changes'].every((c) => typeof caps[c] === 'boolean')) {
    throw new TypeError(`${name}: store: capabilities: expected { expiry, generations, changes } (booleans), got ${describeValue(caps)}`);
  }
  for (const hook of ['loader', 'saver', 'deleter'] as const) {
    if (options[hook] !== undefined) throw new TypeError(`${name}: store: give a store or the ${hook} hook, not both`);
  }
  return store as CacheStore;
}

// A merge checks its time every this many keys, and yields once a slice has run this long.
const MERGE_CHECK_EVERY = 256;
const MERGE_SLICE_MS = 5;

// The purge timer waits at least this long: expired entries are invisible meanwhile anyway.
const PURGE_MIN_MS = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;

const expiringPrototypes = new WeakMap<object, object>();
const mapSet = Map.prototype.set;
const mapGet = Map.prototype.get;

/**
 * A cache as a change-saver reads it: the entries not expired, each value as it is saved (with
 * its expiry time, when it has one).
 */
class PersistedView<K> implements ReadonlyMap<K, unknown> {
  readonly #map: Map<K, unknown>;
  readonly #transform: EntryTransform;

  constructor(map: Map<K, unknown>, transform: EntryTransform) {
    this.#map = map;
    this.#transform = transform;
  }

  get size(): number {
    return mapSize.call(this.#map);
  }

  has(key: K): boolean {
    return Map.prototype.has.call(this.#map, key) && this.#transform(key, Map.prototype.get.call(this.#map, key)) !== SKIP_ENTRY;
  }

  get(key: K): unknown {
    if (!Map.prototype.has.call(this.#map, key)) return undefined;
    const saved = this.#transform(key, Map.prototype.get.call(this.#map, key));
    return saved === SKIP_ENTRY ? undefined : saved;
  }

  forEach(fn: (value: unknown, key: K, map: ReadonlyMap<K, unknown>) => void): void {
    for (const [key, value] of this) fn(value, key, this);
  }

  *entries(): MapIterator<[K, unknown]> {
    for (const [key, value] of Map.prototype.entries.call(this.#map) as IterableIterator<[K, unknown]>) {
      const saved = this.#transform(key, value);
      if (saved !== SKIP_ENTRY) yield [key, saved];
    }
  }

  *keys(): MapIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): MapIterator<unknown> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): MapIterator<[K, unknown]> {
    return this.entries();
  }
}


/** A lifetime option: a number > 0 (Infinity: never expires). */
function checkLifetime(name: string, option: string, value: unknown): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new TypeError(`${name}: ${option}: expected a number of ms > 0 (or Infinity), got ${describeValue(value)}`);
  }
  return value;
}

function checkMaxEntries(name: string, value: unknown): number {
  if (value === undefined || value === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(`${name}: maxEntries: expected a whole number ≥ 1 (or Infinity), got ${describeValue(value)}`);
  }
  return value;
}

/** The ttlMs of `set`'s options (undefined when not given); a TypeError names a bad one. */
function checkSetOptions(name: string, options: unknown): number | undefined {
  if (typeof options === 'number' && !Number.isNaN(options)) {
    // Keyv's convention (store.set(key, value, ttl)): a lifetime in ms; ≤ 0 is already expired.
    return options <= 0 ? 0 : options;
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${name}: set: options: expected { ttlMs } or a number of ms, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'ttlMs') throw new TypeError(`${name}: set: unknown option '${key}': the only one is 'ttlMs'`);
  }
  const { ttlMs } = options as SetOptions;
  return ttlMs === undefined ? undefined : checkLifetime(name, 'set: ttlMs', ttlMs);
}

/** How many of `map`'s keys the book says have expired (the clock read once). */
function countExpired(map: Map<unknown, unknown>, book: EntryBook<unknown, unknown>, now: number): number {
  let n = 0;
  for (const key of book.expired(now)) if (Map.prototype.has.call(map, key)) n++;
  return n;
}

// How many times any cache's generation changed in this process: lets a reader (memoize) keep
// the generations it depends on and know, with one compare, whether they may have changed.
let generationChanges = 0;

/** See {@link generationChanges}. @internal */
export function generationChangeCount(): number {
  return generationChanges;
}

function newGeneration(): string {
  return randomUUID();
}

/** The generation saved with what a loader returned; a new one when the store keeps none. */
function savedGeneration(raw: unknown): string {
  if (raw instanceof StoredMap && raw.generation !== undefined) return raw.generation;
  if (raw instanceof DecodedEntries) {
    const { generation, savedAt } = raw.meta;
    if (typeof generation === 'string') return generation;
    // A file from before generations were saved: its save time names its contents well enough.
    if (savedAt > 0) return `saved-at:${savedAt}`;
  }
  return newGeneration();
}
