// The manager: a registry of named caches, their graph and the cascades over it. What it
// reports or writes beside that lives in modules of its own (the graph's edges, the manifest,
// the stats, the exit glue), and it imports no cache module at run time: the cache classes
// import it (their default manager), and register themselves in cache-kinds for it to build.
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { join, resolve } from 'node:path';
import type { AutoSyncCache, AutoSyncCacheOptions } from './auto-sync-cache';
import type { NonPersistentCache } from './non-persistent-cache';
import type { PersistentCache } from './persistent-cache';
import type { AnyCacheMap, CacheHooks, CacheMap } from './cache';
import { cacheKind } from './cache-kinds';
import { CacheGraph } from './cache-graph';
import type { Contents } from './contents';
import { CacheConflictError, CacheNotFoundError, ManagerClosedError } from './errors';
import { checkBoolean, checkOptionsObject, declareOptions, describeValue } from './options';
import { emitGuarded, reportBackgroundError } from './background-errors';
import type { GraphFormat } from './graph-render';
import type { ManagerExit } from './manager-exit';
import type { ManagerStats } from './manager-stats';
import type { ManifestKeeper } from './manifest-keeper';
import { type ProgressOperation, ProgressThrottle } from './progress';
import type { FileStore, FileStoreOptions } from './store/file-store';
import { assertCacheName } from './store/file-name';
import { MANIFEST_FILE } from './store/file-name';
import { defaultBaseDirectory, SafeDirectory, userTempDirectory } from './store/safe-directory';

/** Options of a {@link CacheManager}. */
export interface CacheManagerOptions {
  /**
   * Parent of the manager's cache directory.
   * @default the `DEPCACHE_DIR` environment variable when set and not empty, else
   *   `<os.tmpdir()>/depcache-<uid>`, private to the current user
   */
  readonly baseDirectory?: string;
  /**
   * The cache directory is shared with other users on purpose: skip the checks that it is owned
   * by the current user and not writable by group or others, and create files with the
   * umask's modes instead of 0600 / 0700.
   * @default false
   */
  readonly sharedDirectory?: boolean;
  /** Tuning of the default file store (entries per frame, longest synchronous slice). */
  readonly fileStore?: FileStoreOptions;
}

/** Options of `manager.registerCustomCache()`: CacheMan's flags plus every cache option. */
export interface CustomCacheOptions<K, V> extends Omit<AutoSyncCacheOptions<K, V>, 'manager'> {
  /** Save to a file (PersistentCache) rather than keep in memory only. @default true */
  readonly persistent?: boolean;
  /** Save automatically as edits pile up (AutoSyncCache). @default true */
  readonly autosync?: boolean;
  /** An already built cache to register as it is (CacheMan's `nowrapper`). */
  readonly cache?: CacheMap<K, V>;
}

/** Payloads of the manager's events. */
export interface CacheManagerEvents {
  load: [{ cache: string; loaded: boolean; reason?: 'missing' | 'invalid' | undefined }];
  save: [{ cache: string; durationMs: number; bytes: number | undefined }];
  build: [{ cache: string }];
  invalidate: [{ cache: string; loaded: boolean }];
  delete: [{ cache: string }];
  /** An entry a `set` pushed out of a cache with `maxEntries` (the least recently used one). */
  evict: [{ cache: string; key: unknown }];
  /**
   * Long work on a file cache (a load, a save, a compaction), in entries: only for work that
   * lasts over a second, at most four times a second, ending with `done === total`.
   */
  progress: [{ cache: string; op: ProgressOperation; done: number; total: number }];
  error: [Error];
}

type AnyCache = AnyCacheMap;
type HookSetter = keyof CacheHooks<unknown, unknown>;

const DEFAULT_MANAGER = 'general_cacher';
const managers = new Map<string, CacheManager>();

/**
 * One manager per name, created on first use (CacheMan's `get_cache_manager`).
 * @throws {TypeError} when asked for an existing manager with a different baseDirectory
 */
export function getCacheManager(
  name: string = DEFAULT_MANAGER,
  options: CacheManagerOptions = {},
): CacheManager {
  const existing = managers.get(name);
  if (existing) {
    if (
      options.baseDirectory !== undefined &&
      resolve(options.baseDirectory, name) !== existing.cacheDirectory
    ) {
      throw new TypeError(
        `getCacheManager: manager ${JSON.stringify(name)} already uses ${existing.cacheDirectory}`,
      );
    }
    return existing;
  }
  const manager = new CacheManager(name, options);
  managers.set(name, manager);
  return manager;
}

/**
 * A registry of named caches and their dependency graph (CacheMan's CacheManager, in camelCase
 * and async). Emits `load`, `save`, `build`, `invalidate`, `delete` and `error`.
 *
 * @example
 * const manager = new CacheManager('etl', { baseDirectory: './.cache' });
 * const raw = await manager.registerCache('raw');
 * await manager.registerDependentCache('raw', 'cleaned');
 * await manager.invalidateCache('raw'); // reloads raw and cleaned
 */
export class CacheManager extends EventEmitter<CacheManagerEvents> {
  /** The manager's name; also the last part of its cache directory. */
  readonly name: string;
  /** `join(baseDirectory, name)`; by default `$DEPCACHE_DIR/<name>` or `<os.tmpdir()>/depcache-<uid>/<name>`. */
  readonly cacheDirectory: string;
  /** The default file store of this manager's persistent caches. @internal */
  readonly store: FileStore;
  readonly #caches = new Map<string, AnyCache>();
  readonly #graph = new CacheGraph();
  // Made by the first persistent cache, the first arming of the exit flush: a program that
  // keeps memory-only caches never loads them.
  #manifest: ManifestKeeper | undefined;
  #exit: ManagerExit | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  // Set while a cascade or a remote operation runs: what happens inside is not announced again.
  readonly #quiet = new AsyncLocalStorage<boolean>();
  #bus: ManagerBus | undefined;
  #registryVersion = 0;
  // How many of the caches keep a file in the cache directory (the manifest lists them).
  #filedCaches = 0;

  constructor(name: string = DEFAULT_MANAGER, options: CacheManagerOptions = {}) {
    super();
    assertCacheName(name);
    checkOptionsObject(name, options, CacheManager);
    const { baseDirectory = defaultBaseDirectory(), sharedDirectory = false } = options;
    if (typeof baseDirectory !== 'string' || baseDirectory === '') {
      throw new TypeError(
        `baseDirectory: expected a non-empty string, got ${String(baseDirectory)} (${typeof baseDirectory})`,
      );
    }
    if (typeof sharedDirectory !== 'boolean') {
      throw new TypeError(`sharedDirectory: expected a boolean, got ${String(sharedDirectory)} (${typeof sharedDirectory})`);
    }
    this.name = name;
    this.cacheDirectory = resolve(join(baseDirectory, name));
    // The per-user temp directory is ours too: another user must not be able to create it first.
    const userTemp = userTempDirectory();
    const place = new SafeDirectory(this.cacheDirectory, {
      shared: sharedDirectory,
      parents: baseDirectory === userTemp ? [resolve(userTemp)] : [],
    });
    this.store = new (lazy.fileStore().FileStore)(place, options.fileStore);
    this.store.progress = (cache, op, total) =>
      this.listenerCount('progress') === 0 ? undefined : new ProgressThrottle(total, (done, all) => this.notify('progress', { cache, op, done, total: all }));
  }

  // ----- Registry -----

  /** Whether a cache of that name is registered. */
  cacheRegistered(name: string): boolean {
    return this.#caches.has(name);
  }

  /**
   * The registered cache (CacheMan's `retrieve_raise`). With `kind`, it is typed as that class,
   * and checked: `manager.getCache('users', AutoSyncCache<string, User>)`.
   * @throws {CacheNotFoundError} when no cache has that name
   * @throws {CacheConflictError} when it is not an instance of `kind`
   */
  getCache<K = unknown, V = unknown>(name: string): CacheMap<K, V>;
  getCache<C extends AnyCacheMap>(name: string, kind: CacheClass<C>): C;
  getCache(name: string, kind?: CacheClass<AnyCacheMap>): AnyCacheMap {
    const cache = this.#caches.get(name);
    if (!cache) throw new CacheNotFoundError(name);
    return kind === undefined ? cache : checkKind(this, cache, kind);
  }

  /** Changes whenever a cache is registered or deregistered, so holders of a cache object can tell it may be stale. @internal */
  get registryVersion(): number {
    return this.#registryVersion;
  }

  /** Names of every registered cache. */
  get cacheNames(): string[] {
    return [...this.#caches.keys()];
  }

  /** Registers a new cache object; every cache constructor calls this. @internal */
  adoptCache(cache: AnyCache): void {
    this.assertOpen();
    const existing = this.#caches.get(cache.name);
    if (existing && existing !== cache) {
      throw new CacheConflictError(cache.name, this.name, existing.constructor.name, cache.constructor.name);
    }
    if (existing === cache) return;
    this.#caches.set(cache.name, cache);
    this.#registryVersion++;
    // Armed by the first cache that can have something to write at exit (a persistent one, or one
    // with a saver), not by the manager. Read while the cache is constructed, before a subclass
    // set its file saver: what it keeps is declared by its class.
    if (cache.keepsFileInDirectory) this.#filedCaches++;
    if (cache.keepsFileInDirectory || cache.saver !== null) this.#exitGlue().armFlush();
    this.#manifestChanged();
  }

  /**
   * Registers an AutoSyncCache, holding `contents` when given (copied in, replacing what an
   * existing cache holds), else loaded or built.
   */
  async registerCache<K = unknown, V = unknown>(
    name: string,
    contents?: Contents<K, V>,
  ): Promise<AutoSyncCache<K, V>> {
    const AutoSyncCache = cacheKind('AutoSyncCache');
    const existing = this.#caches.get(name);
    if (existing) {
      const cache = checkKind(this, existing, AutoSyncCache<K, V>);
      if (contents !== undefined) cache.adoptContents(contents);
      else if (!cache.hasContents) await cache.loadOrBuild(false);
      return cache;
    }
    const cache = new AutoSyncCache<K, V>(name, { manager: this, contents });
    if (contents === undefined) await cache.loadOrBuild(false);
    return cache;
  }

  /**
   * Registers a cache of the kind the flags ask for (CacheMan's `register_custom_cache`):
   * AutoSyncCache by default, PersistentCache with `autosync: false`, NonPersistentCache with
   * `persistent: false`, or `cache` itself. Resolves the cache, loaded or built.
   */
  registerCustomCache<C extends AnyCacheMap>(name: string, options: { readonly cache: C }): Promise<C>;
  registerCustomCache<K = unknown, V = unknown>(
    name: string,
    options: CustomCacheOptions<K, V> & { readonly persistent: false },
  ): Promise<NonPersistentCache<K, V>>;
  registerCustomCache<K = unknown, V = unknown>(
    name: string,
    options: CustomCacheOptions<K, V> & { readonly persistent?: true; readonly autosync: false },
  ): Promise<PersistentCache<K, V>>;
  registerCustomCache<K = unknown, V = unknown>(
    name: string,
    options?: CustomCacheOptions<K, V> & { readonly persistent?: true; readonly autosync?: true },
  ): Promise<AutoSyncCache<K, V>>;
  registerCustomCache<K = unknown, V = unknown>(name: string, options?: CustomCacheOptions<K, V>): Promise<CacheMap<K, V>>;
  async registerCustomCache<K = unknown, V = unknown>(
    name: string,
    options: CustomCacheOptions<K, V> = {},
  ): Promise<CacheMap<K, V>> {
    checkOptionsObject(name, options, undefined);
    const { persistent = true, autosync = true, cache: given, ...rest } = options;
    checkBoolean(name, 'persistent', persistent);
    checkBoolean(name, 'autosync', autosync);
    let cache: CacheMap<K, V>;
    if (given !== undefined) {
      if (!(given instanceof cacheKind('CacheMap'))) {
        throw new TypeError(`${name}: cache: expected a cache (a CacheMap), got ${describeValue(given)}`);
      }
      const ignored = Object.keys(rest).filter((k) => k !== 'manager');
      if (ignored.length > 0) {
        throw new TypeError(
          `${name}: the cache option registers a cache as it was built; its other options (${ignored.join(', ')}) would be ignored: give them to the cache's constructor`,
        );
      }
      if (given.name !== name || given.manager !== this) {
        throw new TypeError(
          `${name}: registerCustomCache: the cache option must be named ${JSON.stringify(name)} and belong to this manager`,
        );
      }
      cache = given;
      this.adoptCache(cache);
    } else {
      const [AutoSyncCache, PersistentCache, NonPersistentCache] = [cacheKind('AutoSyncCache'), cacheKind('PersistentCache'), cacheKind('NonPersistentCache')];
      const cacheOptions = { ...rest, manager: this };
      if (!persistent) cache = new NonPersistentCache<K, V>(name, cacheOptions);
      else if (!autosync) cache = new PersistentCache<K, V>(name, cacheOptions);
      else cache = new AutoSyncCache<K, V>(name, cacheOptions);
    }
    if (!cache.hasContents) await cache.loadOrBuild(false);
    return cache;
  }

  /**
   * The registered cache as it is, without waiting for anything (CacheMan's `retrieve_cache`:
   * safe from inside that cache's own hooks); an unknown name registers a new AutoSyncCache,
   * loaded or built.
   */
  retrieveCache<K = unknown, V = unknown>(name: string): Promise<CacheMap<K, V>>;
  retrieveCache<C extends AnyCacheMap>(name: string, kind: CacheClass<C>): Promise<C>;
  async retrieveCache(name: string, kind?: CacheClass<AnyCacheMap>): Promise<AnyCacheMap> {
    const registered = this.#caches.get(name);
    if (registered) return kind === undefined ? registered : checkKind(this, registered, kind);
    const cache = this.#ensure(name);
    if (kind !== undefined) checkKind(this, cache, kind);
    await cache.loadOrBuild(false);
    return cache;
  }

  registerLoader<K, V>(name: string, loader: CacheHooks<K, V>['loader']): Promise<CacheMap<K, V>> {
    return this.#registerHook(name, 'loader', loader);
  }
  registerSaver<K, V>(name: string, saver: CacheHooks<K, V>['saver']): Promise<CacheMap<K, V>> {
    return this.#registerHook(name, 'saver', saver);
  }
  registerDeleter<K, V>(name: string, deleter: CacheHooks<K, V>['deleter']): Promise<CacheMap<K, V>> {
    return this.#registerHook(name, 'deleter', deleter);
  }
  registerBuilder<K, V>(name: string, builder: CacheHooks<K, V>['builder']): Promise<CacheMap<K, V>> {
    return this.#registerHook(name, 'builder', builder);
  }
  registerValidator<K, V>(
    name: string,
    validator: CacheHooks<K, V>['validator'],
  ): Promise<CacheMap<K, V>> {
    return this.#registerHook(name, 'validator', validator);
  }
  registerPreProcessor<K, V>(
    name: string,
    preProcessor: CacheHooks<K, V>['preProcessor'],
  ): Promise<CacheMap<K, V>> {
    return this.#registerHook(name, 'preProcessor', preProcessor);
  }
  registerPostProcessor<K, V>(
    name: string,
    postProcessor: CacheHooks<K, V>['postProcessor'],
  ): Promise<CacheMap<K, V>> {
    return this.#registerHook(name, 'postProcessor', postProcessor);
  }

  /** Makes `dependent` follow `parent` through cascading operations. */
  async registerDependentCache(parent: string, dependent: string): Promise<void> {
    this.addDependency(parent, dependent);
  }

  /** Saves the cache, then forgets it (and, with `cascade`, its dependents). Hook errors propagate. */
  async deregisterCache(name: string, cascade = false): Promise<void> {
    if (!this.#caches.has(name)) throw new CacheNotFoundError(name);
    const names = cascade ? this.#graph.order(name) : [name];
    for (const n of names) {
      const cache = this.#caches.get(n);
      if (!cache) continue;
      await cache.save(false);
      cache.dispose();
      this.#caches.delete(n);
      if (cache.keepsFileInDirectory) this.#filedCaches--;
      this.#registryVersion++;
    }
    this.#manifestChanged();
  }

  /** Saves and forgets every cache. */
  async deregisterAllCaches(): Promise<void> {
    for (const name of [...this.#caches.keys()]) await this.deregisterCache(name);
  }

  // ----- Lifecycle by name -----

  async saveCacheContents(name: string, cascade = false): Promise<void> {
    await this.#ensure(name).save(cascade);
  }
  async saveAllCacheContents(): Promise<void> {
    for (const cache of [...this.#caches.values()]) await cache.save(false);
  }
  async deleteSavedCacheContent(name: string, cascade = true): Promise<void> {
    await this.#ensure(name).deleteSavedContent(cascade);
  }
  async deleteAllSavedCacheContents(): Promise<void> {
    for (const cache of [...this.#caches.values()]) await cache.deleteSavedContent(false);
  }
  async invalidateCache(name: string, cascade = true): Promise<void> {
    await this.#ensure(name).invalidate(cascade);
  }
  async invalidateAndRebuildCache<K = unknown, V = unknown>(
    name: string,
    cascade = true,
  ): Promise<CacheMap<K, V>> {
    const cache = this.#ensure(name);
    await cache.invalidateAndRebuild(cascade);
    return cache as CacheMap<K, V>;
  }
  async invalidateAndRebuildAllCaches(): Promise<void> {
    for (const cache of [...this.#caches.values()]) await cache.invalidateAndRebuild(false);
  }
  /** Reloads from the saved state; the cache may end up with no contents. */
  async reloadCache<K = unknown, V = unknown>(name: string, cascade = false): Promise<CacheMap<K, V>> {
    const cache = this.#ensure(name);
    await cache.load(cascade);
    return cache as CacheMap<K, V>;
  }
  async reloadAllCaches(): Promise<void> {
    for (const cache of [...this.#caches.values()]) await cache.load(false);
  }
  /** Reloads, building when nothing valid is saved. */
  async reloadOrRebuildCache<K = unknown, V = unknown>(
    name: string,
    cascade = false,
  ): Promise<CacheMap<K, V>> {
    const cache = this.#ensure(name);
    await cache.loadOrBuild(cascade);
    return cache as CacheMap<K, V>;
  }
  async reloadOrRebuildAllCaches(): Promise<void> {
    for (const cache of [...this.#caches.values()]) await cache.loadOrBuild(false);
  }

  /**
   * Per cache: kind, entries, dirty edits, loads, saves, builds, last save time, duration and
   * bytes, bytes on disk; and this process's CPU and memory (pidusage).
   */
  async stats(): Promise<ManagerStats> {
    return lazy.stats().managerStats(this.name, this.cacheDirectory, this.#caches.values());
  }

  /**
   * Saves every cache, stops every timer and refuses further work. Safe to call twice.
   * A save that fails is thrown after the others ran; the manager is closed either way.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const failures: unknown[] = [];
      for (const cache of [...this.#caches.values()]) {
        try {
          await cache.save(false);
        } catch (err) {
          failures.push(err);
        }
      }
      // A compaction the last saves started writes the cache's files: it ends before close does.
      for (const cache of this.#caches.values()) await cache.backgroundSettled();
      for (const cache of this.#caches.values()) {
        cache.dispose();
        cache.refuseWrites();
      }
      await this.#manifest?.settled();
      await this.#bus?.close();
      this.#closed = true;
      this.#exit?.disarm();
      if (managers.get(this.name) === this) managers.delete(this.name);
      if (failures.length === 1) throw failures[0];
      if (failures.length > 1) throw new AggregateError(failures, `${this.name}: saves failed on close`);
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ----- Graph and cascade (internal) -----

  /** @internal */
  addDependency(parent: string, dependent: string): void {
    if (this.#graph.addDependency(parent, dependent)) this.#manifestChanged();
  }

  /** Records that `cache` holds results computed over `inputs` (shown by `depcache graph`). @internal */
  recordInputs(cache: string, inputs: readonly string[]): void {
    if (this.#graph.recordInputs(cache, inputs)) this.#manifestChanged();
  }

  /** @internal */
  dependentsOf(name: string): ReadonlySet<string> {
    return this.#graph.dependentsOf(name);
  }

  /**
   * Runs `op` on `root` and every cache that depends on it, transitively, each once, parents
   * before their dependents (cycles are broken where they close). Dependents not registered yet
   * are registered as retrieveCache() does. Resolves what `op` resolved for `root`. @internal
   */
  async cascade<T>(root: string, op: (cache: AnyCache) => Promise<T>): Promise<T> {
    return this.#quiet.run(true, async () => {
      let result: T | undefined;
      for (const name of this.#graph.order(root)) {
        const cache = name === root ? this.getCache(root) : await this.retrieveCache(name);
        const value = await op(cache);
        if (name === root) result = value;
      }
      return result as T;
    });
  }

  /**
   * Attaches an invalidation bus (see `connectBus`): from now on, invalidating, rebuilding,
   * deleting or saving a cache here is handed to `bus.publish`, and the bus applies other
   * processes' operations here. One bus per manager; closed with it.
   * @throws {TypeError} when a bus is already attached
   */
  attachBus(bus: ManagerBus): void {
    this.assertOpen();
    if (this.#bus) throw new TypeError(`${this.name}: a bus is already connected`);
    this.#bus = bus;
  }

  /** Whether the attached bus applies other processes' saves here (`followSaves`). */
  get followsSaves(): boolean {
    return this.#bus?.followSaves === true;
  }

  /** Publishes an operation a user started here (not one inside a cascade or from the bus). @internal */
  announce(op: BusOperation, cache: string, cascade: boolean, detail?: unknown): void {
    if (this.#bus === undefined || this.#quiet.getStore() === true) return;
    this.#bus.publish(op, cache, cascade, detail);
  }

  /**
   * Applies an operation another process announced, as a bus delivers it. A cache shared
   * through its store (Redis) is reloaded, or for a save merged key by key (the other process
   * already wrote the shared state); one with local files is rebuilt or invalidated here. @internal
   */
  async applyRemote(message: RemoteOperation): Promise<void> {
    const { op, cache: name, cascade } = message;
    if (!this.#caches.has(name) && !this.#graph.isParent(name)) return; // nothing of it here
    if (this.#closed) return;
    await this.#quiet.run(true, async () => {
      const cache = this.#ensure(name);
      if (op === 'invalidate') {
        // A shared cache catches up with the shared state key by key, keeping the edits made
        // here and not saved yet: dropping them would lose writes a save here was about to
        // send (the invalidation is the other process's, not this one's).
        // Whether there is memory to merge into is decided when the merge runs, in the cache's
        // queue: a message that arrives while the cache is still opening must not turn into a
        // reload that runs after the open and drops the edits made since.
        const resync = async (c: AnyCache): Promise<void> => {
          const follow = c.followShared;
          if (follow !== undefined) await follow(undefined);
          else await c.invalidate(false);
        };
        if (cascade) await this.cascade(name, resync);
        else await resync(cache);
      } else if (op === 'delete') {
        // The shared state is gone already: running the deleter again here could delete what
        // the other process saved since. Memory follows the shared state instead.
        if (cache.followShared !== undefined) await cache.invalidate(cascade);
        else await cache.deleteSavedContent(cascade);
      } else if (op === 'save') {
        const follow = cache.followShared;
        if (follow) await follow(message.detail); // a local file holds nothing new; no memory, nothing to merge
      } else if (op === 'rebuild') {
        if (cache.followShared !== undefined) await cache.invalidate(cascade);
        else await cache.invalidateAndRebuild(cascade);
      }
    });
  }

  // ----- Reporting (internal) -----

  /** @internal */
  notify<E extends Exclude<keyof CacheManagerEvents, 'error'>>(
    event: E,
    ...args: CacheManagerEvents[E]
  ): void {
    if (this.listenerCount(event) === 0) return;
    emitGuarded(this, event, args, (err) => this.reportError(err));
  }

  /**
   * Reports a failure of background work: an `error` event when someone listens, else a process
   * warning (once per code and cache). Never throws. @internal
   */
  reportError(err: unknown): void {
    const who = (err as { cacheName?: unknown } | null)?.cacheName;
    reportBackgroundError(this, err, typeof who === 'string' ? who : '', 'EUNKNOWN');
  }

  /** @internal @throws {ManagerClosedError} */
  assertOpen(): void {
    if (this.#closed) throw new ManagerClosedError(this.name);
  }

  /**
   * Saves every dirty cache synchronously; runs at process exit. One failure does not stop the
   * others; the failures are returned, each naming its cache. @internal
   */
  flushSync(): unknown[] {
    return this.#exitGlue().flushSync();
  }

  /**
   * From now on, the caches here that only save asynchronously (Redis, a custom saver) are saved
   * when the event loop empties and on SIGINT/SIGTERM/SIGHUP, before the process goes; a store
   * calls this when it takes a cache of this manager, and so does a cache given a saver. @internal
   */
  saveSharedAtExit(): void {
    if (!this.#closed) this.#exitGlue().armSave();
  }

  /**
   * The dependency graph of this manager's caches, as `depcache graph --format` writes it:
   * every cache with its class, entries and last save here, edges parent → dependent, and the
   * caches memoized results were computed over.
   * @param options.format 'text' (an indented tree, the default), 'json', 'dot' (Graphviz) or 'mermaid'
   * @throws {TypeError} for another format
   */
  graph(options: { readonly format?: GraphFormat } = {}): string {
    for (const key of Object.keys(options ?? {})) if (key !== 'format') throw new TypeError(`${this.name}: graph: unknown option '${key}': did you mean 'format'?`);
    return lazy.graphRender().renderGraph(this.#graph.model(this.name, this.#caches), options.format ?? 'text');
  }

  /** Path of the manifest the CLI reads (`graph`, `invalidate`). */
  get manifestPath(): string {
    return join(this.cacheDirectory, MANIFEST_FILE);
  }

  /** Schedules one manifest write for this turn, if any cache here is persistent. */
  #manifestChanged(): void {
    if (this.#closed || this.#filedCaches === 0) return;
    this.#manifestKeeper().changed();
  }

  #manifestKeeper(): ManifestKeeper {
    this.#manifest ??= new (lazy.manifestKeeper().ManifestKeeper)({
      name: this.name,
      place: this.store.place,
      caches: this.#caches,
      graph: this.#graph,
      reportError: (err) => this.reportError(err),
    });
    return this.#manifest;
  }

  #exitGlue(): ManagerExit {
    this.#exit ??= new (lazy.managerExit().ManagerExit)(this.#caches, this.#manifestKeeper());
    return this.#exit;
  }

  #ensure(name: string): AnyCache {
    const cache = this.#caches.get(name);
    if (cache) return cache;
    this.assertOpen();
    const AutoSyncCache = cacheKind('AutoSyncCache');
    return new AutoSyncCache(name, { manager: this });
  }

  async #registerHook<K, V>(name: string, hook: HookSetter, fn: unknown): Promise<CacheMap<K, V>> {
    if (fn !== null && typeof fn !== 'function') {
      throw new TypeError(`${name}: ${hook}: expected a function or null, got ${typeof fn}`);
    }
    const cache = this.#ensure(name);
    (cache as unknown as Record<string, unknown>)[hook] = fn;
    if (hook === 'saver' && fn !== null) this.saveSharedAtExit(); // a custom saver may be asynchronous
    if (!cache.hasContents) await cache.loadOrBuild(false);
    return cache as CacheMap<K, V>;
  }
}

/** An operation one process announces to the others. */
export type BusOperation = 'invalidate' | 'rebuild' | 'delete' | 'save';

/** An operation of another process, as a bus delivers it. @internal */
export interface RemoteOperation {
  readonly op: BusOperation;
  readonly cache: string;
  readonly cascade: boolean;
  /** What the saving store announced (for `save`): which keys changed. */
  readonly detail?: unknown;
}

/** What a manager needs of an invalidation bus. */
export interface ManagerBus {
  /** Whether other processes' saves are applied here. */
  readonly followSaves: boolean;
  /** Tells the other processes; never throws (failures are reported). */
  publish(op: BusOperation, cache: string, cascade: boolean, detail?: unknown): void;
  close(): Promise<void>;
}

/** A cache class, as `getCache(name, kind)` takes it (`AutoSyncCache<string, User>`). */
export type CacheClass<C extends AnyCacheMap> = abstract new (...args: never[]) => C;

/** `cache` as an instance of `kind`. @throws {CacheConflictError} when it is not one */
function checkKind<C extends AnyCacheMap>(manager: CacheManager, cache: AnyCache, kind: CacheClass<C>): C {
  if (cache instanceof kind) return cache;
  throw new CacheConflictError(cache.name, manager.name, cache.constructor.name, kind.name);
}

declareOptions(CacheManager, ['baseDirectory', 'fileStore', 'sharedDirectory']);

// What a manager needs only once a cache needs it (a manifest, the exit glue) or a user asks
// (stats, a rendered graph): loaded then, so requiring the package stays cheap (issue 34).
/* eslint-disable @typescript-eslint/no-require-imports */
const lazy = {
  // The v8 file store and its writer, lock, journal and compaction thread: loaded by the first manager.
  fileStore: () => require('./store/file-store') as typeof import('./store/file-store'),
  manifestKeeper: () => require('./manifest-keeper') as typeof import('./manifest-keeper'),
  managerExit: () => require('./manager-exit') as typeof import('./manager-exit'),
  stats: () => require('./manager-stats') as typeof import('./manager-stats'),
  graphRender: () => require('./graph-render') as typeof import('./graph-render'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

