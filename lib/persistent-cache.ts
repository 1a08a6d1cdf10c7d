import { declareOptions } from './options';
import { CacheMap, openCache, type CacheOptions, type JournalWriter, type Loader, type Saver, type SnapshotWriter } from './cache';
import { type CacheFileStore, type CorruptFilePolicy, FileStore } from './store/file-store';
import { type EntrySnapshot, LiveSnapshot } from './store/snapshot';
import * as fs from 'node:fs';

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

  /** Constructs the cache and runs `loadOrBuild()`. */
  static override open<K = unknown, V = unknown>(
    name: string,
    options?: PersistentCacheOptions<K, V>,
  ): Promise<PersistentCache<K, V>> {
    return openCache(PersistentCache<K, V>, name, options, () => new PersistentCache<K, V>(name, options));
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
    const resolved = store ?? this.manager.store;
    this.#store = resolved;
    const report = (err: Error) => this.manager.reportError(err);
    this.#fileLoader = (n) => resolved.read(n, this.onCorrupt, report) as ReturnType<Loader<K, V>>;
    // Never called directly: save() recognizes it and streams a copy-on-write snapshot instead.
    this.#fileSaver = async (n, contents) => {
      await resolved.write(n, new LiveSnapshot(contents));
    };
    if (options.loader === undefined) this.loader = this.#fileLoader;
    if (options.saver === undefined) this.saver = this.#fileSaver;
    if (options.deleter === undefined) this.deleter = (n) => resolved.remove(n);
    if (resolved instanceof FileStore && resolved.journal) {
      // Saves append what changed since the last one: the cache records which keys changed.
      this.trackChanges(true);
      this.#journal = {
        hasBase: () => fs.existsSync(resolved.pathFor(this.name)),
        writeIfNoBase: (snapshot) => resolved.writeWhole(this.name, snapshot, true),
        append: (record) => resolved.append(this.name, record),
        appendSync: (record) => resolved.appendSync(this.name, record),
        afterAppend: (result) => {
          if (!resolved.compactionDue(result)) return;
          // In the background: a failure is reported, and the journal stays valid meanwhile.
          resolved.compact(this.name).catch((err: unknown) => this.manager.reportError(err));
        },
      };
    }
  }

  /** Whether the loader is still the default file loader (so {@link loadSync} works). */
  get hasDefaultLoader(): boolean {
    return this.loader === this.#fileLoader;
  }

  /** Path of the cache file. */
  get path(): string {
    return this.#store.pathFor(this.name);
  }

  /**
   * Rewrites the file and its journal as one new file now (saves trigger this by themselves once
   * the journal outgrows its share of the file). Unsaved edits are not included: save first.
   */
  async compact(): Promise<void> {
    if (this.#store instanceof FileStore && this.#store.journal) await this.#store.compact(this.name);
  }

  /**
   * Loads synchronously from the default file store, for code that cannot await (a sync
   * memoized function's first call). Runs the validator only if it is synchronous.
   * Resolves like {@link load}: true when contents were loaded.
   */
  loadSync(): boolean {
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

declareOptions(PersistentCache, ['onCorrupt']);
