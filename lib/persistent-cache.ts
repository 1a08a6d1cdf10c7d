import { declareOptions } from './options';
import { registerCacheKind } from './cache-kinds';
import { CacheMap, type CacheOptions, type Loader, type Saver } from './cache';
import type { JournalWriter, SnapshotWriter } from './cache-saves';
import { openCache } from './cache-options';
import type { CacheFileStore, CorruptFilePolicy, FileStore } from './store/file-store';
import { type EntrySnapshot, LiveSnapshot } from './store/snapshot';
import * as fs from 'node:fs';
import { basename } from 'node:path';

// Waits this long after a file event before merging, so one save's events make one merge.
const FOLLOW_DELAY_MS = 20;

/** Options of a {@link PersistentCache}. */
export interface PersistentCacheOptions<K, V> extends CacheOptions<K, V> {
  /**
   * What a damaged cache file does on load: `'quarantine'` moves it aside to
   * `<file>.corrupt-<timestamp>`, reports it (manager `error` event, else a process warning) and
   * loads nothing, so `loadOrBuild()` rebuilds; `'throw'` raises `CorruptCacheFileError` and
   * leaves the file where it is.
   * @default 'quarantine'
   */
  readonly onCorrupt?: CorruptFilePolicy;
  /**
   * Watch the cache's file and journal, and merge what other processes save as it lands, key by
   * key (keys edited here and not saved yet are kept). Needs the default file store.
   * @default false
   */
  readonly followJournal?: boolean;
}

/**
 * A cache saved to `<manager.cacheDirectory>/<encoded name>.v8`: CRC-checked frames, atomic
 * writes, point-in-time snapshots, and a synchronous save of dirty contents at process exit.
 *
 * @example
 * const cache = await PersistentCache.open<string, number>('scores');
 * cache.set('alice', 3);
 * await cache.save(); // still there after a restart
 */
export class PersistentCache<K = unknown, V = unknown> extends CacheMap<K, V> {
  /** What a damaged cache file does on load. */
  onCorrupt: CorruptFilePolicy;
  readonly #fileLoader: Loader<K, V>;
  readonly #fileSaver: Saver<K, V>;
  readonly #store: CacheFileStore;
  readonly #journal: JournalWriter | undefined;
  readonly #follow: boolean;
  #watcher: fs.FSWatcher | undefined;
  #unfollow: (() => void) | undefined;
  // Saved through a store given as an option: the v8 file below is not this cache's.
  #ownStore = false;
  // What is saved where (see savedFiles): the v8 file and its journal, a text file, or nothing here.
  #files: readonly string[] = [];
  #followTimer: NodeJS.Timeout | undefined;

  /** Constructs the cache and runs `loadOrBuild()`. */
  static override open<K = unknown, V = unknown>(
    name: string,
    options?: PersistentCacheOptions<K, V>,
  ): Promise<PersistentCache<K, V>> {
    return openCache(this, name, options, () => new this<K, V>(name, options));
  }

  /** `store` (internal): where the file lives; the manager's v8 store unless a subclass says. */
  constructor(name: string, options: PersistentCacheOptions<K, V> = {}, store?: CacheFileStore) {
    super(name, options);
    const { onCorrupt = 'quarantine' } = options;
    if (onCorrupt !== 'quarantine' && onCorrupt !== 'throw') {
      throw new TypeError(
        `${name}: onCorrupt: expected 'quarantine' or 'throw', got ${String(onCorrupt)} (${typeof onCorrupt})`,
      );
    }
    this.onCorrupt = onCorrupt;
    const { followJournal = false } = options;
    if (typeof followJournal !== 'boolean') {
      throw new TypeError(`${name}: followJournal: expected true or false, got ${String(followJournal)} (${typeof followJournal})`);
    }
    const resolved = store ?? this.manager.store;
    this.#store = resolved;
    const report = (err: Error) => this.manager.reportError(err);
    this.#fileLoader = (n) => resolved.read(n, this.onCorrupt, report) as ReturnType<Loader<K, V>>;
    // Never called directly: save() recognizes it and streams a copy-on-write snapshot instead.
    this.#fileSaver = async (n, contents) => {
      await resolved.write(n, new LiveSnapshot(contents));
    };
    // A store of the user's (the `store` option) takes the place of the file: the core saves through it.
    const own = options.store;
    this.#ownStore = own !== undefined;
    if (own === undefined && options.loader === undefined) this.loader = this.#fileLoader;
    if (own === undefined && options.saver === undefined) this.saver = this.#fileSaver;
    if (own === undefined && options.deleter === undefined) this.deleter = (n) => resolved.remove(n);
    if (own === undefined && isFileStore(resolved) && resolved.journal) {
      // Saves append what changed since the last one: the cache records which keys changed.
      this.trackChanges(true);
      this.#journal = {
        hasBase: () => fs.existsSync(resolved.pathFor(this.name)),
        writeIfNoBase: (snapshot) => resolved.writeWhole(this.name, snapshot, true),
        append: (record) => resolved.append(this.name, record),
        saveChanges: (changes) => resolved.saveChanges(this.name, changes),
        mayWriteWhole: (bound, all) => resolved.mayWriteWhole(this.name, bound, all),
        appendSync: (record) => resolved.appendSync(this.name, record),
        afterAppend: (result) => {
          if (!resolved.compactionDue(result)) return;
          // In the background and outside the cache's queue, from the files (the store holds the
          // lock only at its start and end), so saves go on meanwhile; a failure is reported,
          // and the journal stays valid meanwhile. backgroundSettled() waits for it.
          this.detached(() => resolved.compact(this.name)).catch((err: unknown) => this.manager.reportError(err));
        },
      };
    }
    if (followJournal && own !== undefined) {
      if (own.follow === undefined) throw new TypeError(`${name}: followJournal: its store cannot follow other writers (it has no follow())`);
      this.#unfollow = own.follow.call(own, name, () => this.#followSoon());
      this.trackChanges(true); // a merge keeps the keys edited here: it needs to know them
    } else if (followJournal && !(isFileStore(resolved) && resolved.journal)) {
      throw new TypeError(`${name}: followJournal: needs the default file store with its journal, or a store with follow()`);
    }
    this.#follow = followJournal && own === undefined;
    // A store of the user's keeps the state elsewhere; the text caches' store is their file (`store`).
    if (own === undefined) this.#files = isFileStore(resolved) && resolved.journal ? [this.path, resolved.journalPathFor(name)] : [this.path];
    else if (store !== undefined) this.#files = [this.path];
    this.#startFollowing();
  }

  /** @internal */
  override get keepsFileInDirectory(): boolean {
    return true;
  }

  /** @internal */
  override get savedFiles(): readonly string[] {
    return this.#files;
  }

  /** @internal */
  protected override get corruptPolicy(): CorruptFilePolicy {
    return this.onCorrupt;
  }

  /** Watches the cache directory (once it exists) for saves of this cache by other processes. */
  #startFollowing(): void {
    if (!this.#follow || this.#watcher !== undefined) return;
    const store = this.#store as FileStore;
    const file = basename(this.path);
    const journal = basename(store.journalPathFor(this.name));
    try {
      // Not persistent: following never keeps the process alive.
      this.#watcher = fs.watch(store.directory, { persistent: false }, (_event, changed) => {
        if (changed === file || changed === journal) this.#followSoon();
      });
      this.#watcher.on('error', (err) => this.manager.reportError(err));
    } catch {
      // No directory yet: the first load or save that creates it starts the watch.
    }
  }

  /** Coalesces a burst of file events into one merge. */
  #followSoon(): void {
    if (this.#followTimer !== undefined) return;
    this.#followTimer = setTimeout(() => {
      this.#followTimer = undefined;
      const store = this.#store as FileStore;
      // A store of the user's says only that something was saved: merge its whole saved state.
      const read =
        this.#unfollow !== undefined ? () => this.#loadWhole() : () => store.followSince(this.name, this.onCorrupt, (err) => this.manager.reportError(err));
      this.mergeSaved(read).catch((err: unknown) => this.manager.reportError(err));
    }, FOLLOW_DELAY_MS);
    this.#followTimer.unref();
  }

  /** Also waits for the compaction of this cache's file that a save started (it runs outside the queue). @internal */
  override async backgroundSettled(): Promise<void> {
    await super.backgroundSettled();
    if (isFileStore(this.#store)) await this.#store.compactionSettled(this.name);
  }

  protected override stateSettled(event: 'load' | 'save' | 'build' | 'delete'): void {
    super.stateSettled(event);
    this.#startFollowing();
  }

  /** What the user's store holds now, for a merge. */
  async #loadWhole(): Promise<{ whole: Map<unknown, unknown> } | undefined> {
    const loaded = this.loader === null ? undefined : await this.loader(this.name);
    return loaded instanceof Map ? { whole: loaded } : undefined;
  }

  override dispose(): void {
    super.dispose();
    this.#unfollow?.();
    this.#unfollow = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#followTimer !== undefined) clearTimeout(this.#followTimer);
  }

  /** Whether the loader is still the default file loader (so {@link loadSync} works). */
  get hasDefaultLoader(): boolean {
    return this.loader === this.#fileLoader || this.canReadStoreSync;
  }

  /** Path of the cache file. */
  get path(): string {
    return this.#store.pathFor(this.name);
  }

  /**
   * Rewrites the file and its journal as one new file now (saves trigger this by themselves once
   * the journal outgrows its share of the file). Unsaved edits are not included: save first.
   * Waits for this cache's running load or save, and they for it. Does nothing for a cache
   * saved through a `store` of its own (or a file without a journal).
   */
  async compact(): Promise<void> {
    const store = this.#store;
    if (this.#ownStore || !(isFileStore(store) && store.journal)) return;
    // When memory is exactly what is saved (no unsaved edit, no other process's record since
    // this one read or wrote), the new file is written from memory, as a save is; otherwise it
    // is rebuilt from the files, keeping every process's records.
    await this.withMemorySnapshots((source) => store.compact(this.name, source), 'compact');
  }

  /**
   * Loads synchronously from the default file store, for code that cannot await (a sync
   * memoized function's first call). Runs the validator only if it is synchronous.
   * Resolves like {@link load}: true when contents were loaded.
   */
  loadSync(): boolean {
    if (this.canReadStoreSync) return this.applyLoadedSync(this.readStoreSync());
    if (this.loader !== this.#fileLoader) {
      throw new TypeError(`${this.name}: loadSync() needs the default file loader`);
    }
    const decoded = this.#store.readSync(this.name, this.onCorrupt, (err) =>
      this.manager.reportError(err),
    );
    return this.applyLoadedSync(decoded);
  }

  protected override snapshotWriter(saver: Saver<K, V> | null): SnapshotWriter | undefined {
    if (saver !== this.#fileSaver) return undefined;
    const store = this.#store;
    return (snapshot) => store.write(this.name, snapshot);
  }

  protected override journalWriter(saver: Saver<K, V> | null): JournalWriter | undefined {
    return saver === this.#fileSaver ? this.#journal : undefined;
  }

  protected override syncSnapshotWriter(
    saver: Saver<K, V> | null,
  ): ((snapshot: EntrySnapshot) => number) | undefined {
    if (saver !== this.#fileSaver) return undefined;
    const store = this.#store;
    return (snapshot) => store.writeSync(this.name, snapshot);
  }
}

/**
 * Whether `store` is the v8 file store (with its journal, following and compaction). The store
 * module is required here, not at the top: the manager loads it with the first manager, so
 * `require('depcache')` alone never does.
 */
function isFileStore(store: CacheFileStore): store is FileStore {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return store instanceof (require('./store/file-store') as typeof import('./store/file-store')).FileStore;
}

declareOptions(PersistentCache, ['onCorrupt', 'followJournal']);
registerCacheKind('PersistentCache', PersistentCache);
