import { type Contents, fillMap, toMap } from './contents';
import { OperationQueue, outsideOperations } from './operation-queue';
import { CacheContentsMissingError, ReentrantCallError } from './errors';
import { checkOptionsObject, declareOptions, describeValue } from './options';
import type { CacheManager } from './manager';
import { getCacheManager } from './manager';
import type { MemorySnapshotSource } from './store/file-store';
import { coarseNow } from './coarse-clock';
import { assertCacheName } from './store/file-name';
import type { CacheStore } from './store/cache-store';
import { StoredMap } from './store/store-save';
import { type CacheCallbacks, CacheCore, newGeneration, registerCoreAccess } from './cache-core';
import { applyPrototype, dispatchBelow, libraryPrototype } from './cache-prototypes';
import {
  checkLifetime,
  checkMaxEntries,
  disarmPurge,
  enableExpiry,
  expiresAt,
  persistedView,
  purgeExpired,
  setWithOptions,
  snapshotOf,
  trimToMax,
} from './expiry/cache-expiry';
import {
  type SaveWriters,
  type SnapshotWriter,
  type JournalWriter,
  assertSaverKeepsExpiry,
  flushSync,
  loadFromStore,
  loadFromStoreSync,
  savesAsyncAtExit,
} from './cache-saves';
import { type SavedUpdate, mergeUpdate } from './cache-merge';
import { applyLoadedSync, buildSync, deleteNow, installBuilt, loadNow, produceBuilt, replaceWith, saveNow } from './cache-lifecycle';
import { HOOKS, checkCacheOptions, checkStore, openCache } from './cache-options';
import type { EntrySnapshot } from './store/snapshot';

export type { JournalWriter, SnapshotWriter } from './cache-saves';

export type { AnyCacheMap, Loader, Saver, Deleter, Builder, Validator, Processor, CacheHooks, CacheOptions, SetOptions, CacheStats } from './cache-types';
import type { AnyCacheMap, Loader, Saver, Deleter, Builder, Validator, Processor, CacheOptions, SetOptions, CacheStats } from './cache-types';

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

  /**
   * Set by a store other processes share (RedisStore.attach): applies another process's save
   * here from what that save announced (undefined: reload what is shared). The manager's bus
   * calls it; a cache of any other store has none. @internal
   */
  followShared: ((detail: unknown) => Promise<void>) | undefined = undefined;

  // What this cache's modules share (expiry, saves, merges, prototypes): see cache-core.ts.
  readonly #core: CacheCore<K>;
  // Lifecycle operations of one cache run one at a time, in order.
  readonly #queue = new OperationQueue();
  // Background work started by this cache (compactions, store snapshots), still running.
  readonly #background = new Set<Promise<void>>();
  #queuedSave: Promise<boolean> | null = null;
  // The saver last found to keep expiry times (see #assertKeepsExpiry).
  #keepsExpiryChecked: unknown = null;

  static {
    registerCoreAccess((cache) => (cache as CacheMap).#core as CacheCore<unknown>);
  }

  constructor(name: string, options: CacheOptions<K, V> = {}) {
    super(); // never super(entries): Map's constructor would call our set() before #fields exist
    // The prototype of the nearest class of ours; a user's subclass sits above it and keeps its own.
    const real = libraryPrototype(new.target.prototype as object, CacheMap.prototype);
    const subclassed = real !== new.target.prototype;
    if (subclassed) dispatchBelow(new.target.prototype as object, real);
    assertCacheName(name);
    checkOptionsObject(name, options, new.target);
    checkCacheOptions(name, options as Readonly<Record<string, unknown>>, (d) => d instanceof CacheMap);
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
    const store = checkStore(name, options as CacheOptions<unknown, unknown>);
    const ttlMs = checkLifetime(name, 'ttlMs', options.ttlMs);
    const maxEntries = checkMaxEntries(name, options.maxEntries);
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new TypeError(`${name}: clock: expected a function, got ${describeValue(options.clock)}`);
    }
    const callbacks: CacheCallbacks = {
      thresholdReached: () => this.editThresholdReached(),
      assertKeepsExpiry: (where) => this.#assertKeepsExpiry(where),
      applyPrototype: () => applyPrototype(this, core as CacheCore<unknown>, real, subclassed),
      contentsMissing: () => this.contentsMissing(),
      stateSettled: (event) => this.stateSettled(event),
    };
    // Read once per synchronous stretch by default: a loop of reads pays for one Date.now().
    const core = new CacheCore<K>(this, name, this.manager, ttlMs, maxEntries, options.clock ?? coarseNow, store, callbacks, real);
    this.#core = core;
    if (store !== null) {
      const storeSaver: Saver<K, V> = async () => undefined; // never called: save() writes through the store
      const storeLoader: Loader<K, V> = () => loadFromStore(this, store, this.corruptPolicy) as ReturnType<Loader<K, V>>;
      core.storeSaver = this.saver = storeSaver;
      core.storeLoader = this.loader = storeLoader;
      this.deleter = (n) => store.remove(n);
    }
    if (ttlMs !== Number.POSITIVE_INFINITY) {
      if (!this.keepsExpiryTimes) throw new TypeError(`${name}: ttlMs: a ${new.target.name} cannot save expiry times; use a PersistentCache or a JSON cache`);
      if (options.saver) throw new TypeError(`${name}: ttlMs: a custom saver is given values only, so it cannot save expiry times`);
      if (store !== null && !store.capabilities.expiry) throw new TypeError(`${name}: ttlMs: its store cannot save expiry times (capabilities.expiry is false)`);
    }
    if (options.contents !== undefined) {
      fillMap(this, options.contents, name, 'contents option');
      core.edits = Math.max(1, super.size);
    } else core.setHasContents(false);
    if (ttlMs !== Number.POSITIVE_INFINITY || maxEntries !== Number.POSITIVE_INFINITY) enableExpiry(core as CacheCore<unknown>, true);
    this.manager.adoptCache(this);
    // A custom saver may be asynchronous: it is awaited when the loop empties and on a signal.
    if (options.saver || (store !== null && store.saveSync === undefined)) this.manager.saveSharedAtExit();
    if (store?.capabilities.changes === true) this.trackChanges(true);
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
    return this.#core.hasContents;
  }

  /**
   * Changes whenever the entries may have changed (any edit, load or build); never repeats. Lets
   * a reader keep a derived index and know, with one compare, whether it is still true. @internal
   */
  get contentsVersion(): number {
    // Every path that changes the map bumps one of these: set/delete/clear/adopt/build count
    // edits, loads (and dropped contents) count loads, another process's saves merged in count
    // merges. All only grow, so their sum never repeats.
    const core = this.#core;
    return core.edits + core.loads + core.contentsMerged;
  }

  /**
   * Names these contents: a new value whenever they are built (or rebuilt) or replaced
   * wholesale, kept through save and load by the stores that can (the v8 and JSON files), so a
   * result computed from this cache can tell, even in another process, that the cache was
   * rebuilt since. Edits do not change it. A load from a store that keeps none gives a new one.
   */
  get generation(): string {
    return this.#core.generation;
  }

  /** Edits since the last successful save, load or build. */
  get dirtyEdits(): number {
    return this.#core.edits - this.#core.savedEdits;
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
    const core = this.#core;
    if (options !== undefined) return setWithOptions(core as CacheCore<unknown>, key, value, options) as this;
    // Reached with the book on only by a direct call (an override on the instance): its set.
    if (core.book !== null) return (core.behaviour as this).set.call(this, key, value);
    if (core.snapshot !== null) core.snapshot.preserve(key);
    const log = core.log;
    const logged = log.keys;
    if (logged !== null && logged.push(key) > log.limit) log.overflowed(this);
    super.set(key, value);
    if (++core.edits >= core.editTrigger) this.editThresholdReached();
    return this;
  }

  /** @throws {CacheContentsMissingError} ECONTENTS_MISSING when the cache has no contents */
  override delete(key: K): boolean {
    const core = this.#core;
    if (core.book !== null) return (core.behaviour as this).delete.call(this, key);
    return core.baseDelete(key);
  }

  /** Counts as one edit per removed entry (at least one), as a loop of deletes would. */
  override clear(): void {
    const core = this.#core;
    if (core.book !== null) return (core.behaviour as this).clear.call(this);
    core.baseClear();
  }

  override get [Symbol.toStringTag](): string {
    return this.constructor.name;
  }

  // ----- Expiry and bounds (expiry/cache-expiry.ts) -----

  /**
   * When `key`'s entry expires, in ms since the epoch; undefined when it never does, or is
   * absent or already expired.
   */
  expiresAt(key: K): number | undefined {
    return expiresAt(this.#core as CacheCore<unknown>, key);
  }

  /**
   * Removes the entries that have expired, now, and returns how many (each counts as an edit,
   * so the next save drops them from the saved state too). A timer does this by itself at the
   * earliest expiry (at least a second after it was armed); until then `size` counts them.
   */
  purgeExpired(): number {
    return purgeExpired(this.#core as CacheCore<unknown>);
  }

  /**
   * Whether this cache's saved state is a file in its manager's cache directory (a
   * PersistentCache and its subclasses): the manifest lists it, and the CLI finds it. @internal
   */
  get keepsFileInDirectory(): boolean {
    return false;
  }

  /**
   * The files in the cache directory that hold this cache's saved state, its main file first
   * (the manifest names it, `manager.stats()` counts their bytes); none for a store elsewhere. @internal
   */
  get savedFiles(): readonly string[] {
    return [];
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
    if (!this.keepsExpiryTimes) throw new TypeError(`${this.name}: ${where}: a ${this.constructor.name} cannot save expiry times`);
    // Checked once per saver: a loop of sets with a lifetime pays one compare each.
    if (this.saver !== null && this.saver === this.#keepsExpiryChecked) return;
    assertSaverKeepsExpiry(this, this.#core as CacheCore<unknown>, () => this.#writers(), where);
    this.#keepsExpiryChecked = this.saver;
  }

  /**
   * The entries as a store writes them: values with their expiry times, expired ones left out
   * (the cache itself when it keeps no expiry). @internal
   */
  savedView(): ReadonlyMap<K, unknown> {
    return persistedView(this.#core as CacheCore<unknown>) as ReadonlyMap<K, unknown>;
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
    return this.#exclusive(() => loadNow(this, this.#c()), 'load');
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
      return saveNow(this, this.#c(), () => this.#writers());
    }, 'save');
    this.#queuedSave = queued;
    return queued;
  }

  /** Reloads from the saved state, dropping unsaved edits; cascades to dependents by default. */
  invalidate(cascade = true): Promise<boolean> {
    this.manager.announce('invalidate', this.name, cascade);
    if (cascade) return this.manager.cascade(this.name, (c) => c.invalidate(false));
    return this.#exclusive(async () => {
      const loaded = await loadNow(this, this.#c());
      this.manager.notify('invalidate', { cache: this.name, loaded });
      return loaded;
    }, 'invalidate');
  }

  /** Runs the deleter; memory is untouched. Cascades to dependents by default. */
  deleteSavedContent(cascade = true): Promise<void> {
    this.manager.announce('delete', this.name, cascade);
    if (cascade) return this.manager.cascade(this.name, (c) => c.deleteSavedContent(false));
    return this.#exclusive(() => deleteNow(this, this.#c()), 'deleteSavedContent');
  }

  /** Drops memory and saved state, builds and saves; cascades to dependents by default. */
  invalidateAndRebuild(cascade = true): Promise<void> {
    this.manager.announce('rebuild', this.name, cascade);
    if (cascade) return this.manager.cascade(this.name, (c) => c.invalidateAndRebuild(false));
    return this.#exclusive(async () => {
      // Build first: if the builder throws, neither memory nor the saved state has changed.
      const built = await produceBuilt(this);
      await deleteNow(this, this.#c());
      await installBuilt(this, this.#c(), built, true, () => this.#writers());
    }, 'invalidateAndRebuild');
  }

  /** Loads, and builds (and saves) when nothing valid was loaded. Resolves true when loaded. */
  loadOrBuild(cascade = true): Promise<boolean> {
    if (cascade) return this.manager.cascade(this.name, (c) => c.loadOrBuild(false));
    return this.#exclusive(async () => {
      if (await loadNow(this, this.#c())) return true;
      await installBuilt(this, this.#c(), await produceBuilt(this), !this.#core.foundNothingSaved, () => this.#writers());
      return false;
    }, 'loadOrBuild');
  }

  /** Runs builder → postProcessor, replaces the entries in place, then saves. */
  build(): Promise<void> {
    return this.#exclusive(async () => installBuilt(this, this.#c(), await produceBuilt(this), true, () => this.#writers()), 'build');
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
      hasContents: this.#core.hasContents,
      dirtyEdits: this.dirtyEdits,
      loads: this.#core.loads,
      saves: this.#core.saves,
      builds: this.#core.builds,
      lastSaveAt: this.#core.lastSaveAt,
      lastSaveMs: this.#core.lastSaveMs,
      lastSaveBytes: this.#core.lastSaveBytes,
    };
  }

  /**
   * Saves synchronously if the cache is dirty and its saver can run without the event loop
   * (the default file store, a synchronous custom saver, a store with saveSync). Used at process
   * exit; throws EEXIT naming the cache when its edits cannot be saved so. @internal
   */
  flushSync(): boolean {
    return flushSync(this, this.#core as CacheCore<unknown>, this.#writers());
  }

  /** Whether {@link readStoreSync} can read: the loader is the store's, and the store has loadSync. @internal */
  protected get canReadStoreSync(): boolean {
    const core = this.#core;
    return core.store?.loadSync !== undefined && this.loader !== null && this.loader === core.storeLoader;
  }

  /** The store's contents, read synchronously (see {@link canReadStoreSync}); undefined: nothing saved. @internal */
  protected readStoreSync(): StoredMap | undefined {
    return loadFromStoreSync(this.name, this.#core.store as CacheStore);
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
    return savesAsyncAtExit(this, this.#core as CacheCore<unknown>, () => this.#writers());
  }

  /**
   * Replaces the entries in place with `contents`, as unsaved edits (registerCache with
   * contents on an existing cache). @internal
   */
  adoptContents(contents: Contents<K, V>): void {
    const map = toMap<K, V>(contents, this.name, 'contents');
    const core = this.#core;
    if (core.hasContents) (core.behaviour as this).clear.call(this);
    replaceWith(this.#c(), map, true);
    core.setGeneration(newGeneration());
    trimToMax(core as CacheCore<unknown>);
    core.countEdits(Math.max(1, map.size));
  }

  /** Starts recording which keys change between saves, for a saver that writes only those. @internal */
  trackChanges(allOnOverflow = false): void {
    this.#core.log.track(allOnOverflow);
  }

  /**
   * Applies what another process saved, key by key, in this cache's queue (see cache-merge.ts).
   * Keys edited here and not saved yet are left alone; nothing applied counts as an edit. For
   * the stores that follow other writers (the file store's followJournal, Redis). @internal
   */
  mergeSaved(read: () => Promise<SavedUpdate | undefined>): Promise<boolean> {
    return this.#exclusive(async () => {
      const core = this.#core;
      if (!core.hasContents || !core.log.tracking) return false;
      const update = await read();
      return update === undefined ? false : mergeUpdate(core as CacheCore<unknown>, update);
    }, 'mergeSaved');
  }

  /**
   * Runs `fn` in this cache's queue (no load, save or merge meanwhile) with a source of
   * copy-on-write snapshots of memory, which offers one only while nothing here is unsaved:
   * then memory is exactly the saved state, and a store may write it instead of reading files.
   */
  protected withMemorySnapshots<T>(fn: (source: MemorySnapshotSource) => Promise<T>, operation: string): Promise<T> {
    const core = this.#core;
    return this.#exclusive(
      () =>
        fn(async (write) => {
          if (!core.hasContents || !core.log.tracking || this.dirtyEdits !== 0 || core.log.hasUnsaved || core.snapshot !== null) return false;
          // Memory is not what is saved when a processor shapes what is loaded or saved.
          if (this.preProcessor !== null || this.postProcessor !== null) return false;
          const snapshot = snapshotOf(core as CacheCore<unknown>, this);
          core.openReader(snapshot);
          try {
            await write(snapshot);
            return true;
          } finally {
            core.closeReader(snapshot);
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
    disarmPurge(this.#core as CacheCore<unknown>);
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
    return this.#core.edits;
  }

  /** Edit count at which {@link editThresholdReached} runs next. */
  protected get editTrigger(): number {
    return this.#core.editTrigger;
  }
  protected set editTrigger(value: number) {
    this.#core.editTrigger = value;
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
    if (!this.#core.hasContents && !this.contentsMissing()) {
      throw new CacheContentsMissingError(this.name);
    }
  }

  /**
   * Refuses every write from now on with ManagerClosedError (the manager closed: nothing could
   * save it); reads keep working. Costs `set` nothing: the methods that throw live on a twin
   * prototype, as for a cache without contents. @internal
   */
  refuseWrites(): void {
    this.#core.writable = false;
    this.#core.callbacks.applyPrototype();
  }

  /**
   * The synchronous load pipeline, for loaders that already hold the data (loadSync).
   * @throws {TypeError} when the validator is asynchronous
   */
  protected applyLoadedSync(raw: unknown): boolean {
    this.manager.assertOpen();
    return applyLoadedSync(this, this.#c(), raw);
  }

  /**
   * Builds synchronously (LazyCache's first access): builder → postProcessor → replace.
   * Does not save. @throws {TypeError} when the builder returns a Promise
   */
  protected buildSync(): void {
    this.manager.assertOpen();
    buildSync(this, this.#c());
  }

  /** The core, as the modules take it (they are not generic in K and V). */
  #c(): CacheCore<unknown> {
    return this.#core as CacheCore<unknown>;
  }

  /** The writers the class offers for the present saver (cold: saves and checks only). */
  #writers(): SaveWriters {
    const saver = this.saver;
    return { snapshot: this.snapshotWriter(saver), journal: this.journalWriter(saver), sync: this.syncSnapshotWriter(saver) };
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
}

declareOptions(CacheMap, ['manager', 'contents', 'dependents', 'saveOnBlank', 'ttlMs', 'maxEntries', 'clock', 'store', ...HOOKS]);
