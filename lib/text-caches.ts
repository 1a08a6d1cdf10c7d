import { AutoSyncCache, type AutoSyncCacheOptions } from './auto-sync-cache';
import { openCache } from './cache-options';
import { checkHook, declareOptions, describeValue } from './options';
import { getCacheManager } from './manager';
import { PersistentCache, type PersistentCacheOptions } from './persistent-cache';
import type { RowBuilder, RowReader } from './store/csv-format';
import { JSON_FORMAT } from './store/json-format';
import { TextFileStore } from './store/text-file-store';
import { TextCacheStore } from './store/text-cache-store';
import type { CacheStore } from './store/cache-store';

/**
 * The options with the text file as their store, through the public store boundary; hooks of
 * the user's own (loader, saver, deleter) or a store of theirs take its place, as before.
 */
function throughStore<O extends { readonly store?: unknown; readonly loader?: unknown; readonly saver?: unknown; readonly deleter?: unknown }>(
  options: O,
  files: TextFileStore,
  keeps: { expiry: boolean; generations: boolean },
): O {
  if (options.store !== undefined || options.loader !== undefined || options.saver !== undefined || options.deleter !== undefined) return options;
  return { ...options, store: new TextCacheStore(files, keeps) as CacheStore };
}

const CSV_KEEPS = { expiry: false, generations: false };
const JSON_KEEPS = { expiry: true, generations: true };

/** What CSV caches add to the persistent options. */
export interface CsvOptions<K, V> {
  /** Cells of the row for one entry (CacheMan's row_builder). @default (key, value) => [key, value] */
  readonly rowBuilder?: RowBuilder<K, V>;
  /** Entry from the cells of one row, all strings (CacheMan's row_reader). @default (row) => [row[0], row[1]] */
  readonly rowReader?: RowReader<K, V>;
  /** A header row, written and skipped on read. @default none */
  readonly header?: readonly string[];
}

export type CsvCacheOptions<K, V> = PersistentCacheOptions<K, V> & CsvOptions<K, V>;
export type AutoSyncCsvCacheOptions<K, V> = AutoSyncCacheOptions<K, V> & CsvOptions<K, V>;

function csvStore<K, V>(name: string, options: CsvCacheOptions<K, V>): TextFileStore {
  checkHook(name, 'rowBuilder', options.rowBuilder);
  checkHook(name, 'rowReader', options.rowReader);
  const { header } = options;
  if (header !== undefined && !(Array.isArray(header) && header.every((h) => typeof h === 'string'))) {
    throw new TypeError(`${name}: header: expected an array of strings, got ${describeValue(header)}`);
  }
  const manager = options.manager ?? getCacheManager();
  // The CSV format (and the CSV packages it loads) comes with the first CSV cache, not the package.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { csvFormat } = require('./store/csv-format') as typeof import('./store/csv-format');
  return new TextFileStore(manager.store.place, csvFormat(options.rowBuilder, options.rowReader, options.header));
}

function jsonStore<K, V>(options: PersistentCacheOptions<K, V>): TextFileStore {
  return new TextFileStore((options.manager ?? getCacheManager()).store.place, JSON_FORMAT);
}

/**
 * A persistent cache kept as `<name>.csv` (CacheMan's CSVCache): one row per entry through
 * `rowBuilder` / `rowReader`, quoted by a real CSV library, written atomically, and ended by a
 * marker line so a truncated file is detected and moved aside like a corrupt v8 file.
 *
 * @example
 * const prices = await CsvCache.open<string, number>('prices', {
 *   rowReader: ([sku, price]) => [sku, Number(price)],
 * });
 */
export class CsvCache<K = unknown, V = unknown> extends PersistentCache<K, V> {
  static override open<K = unknown, V = unknown>(name: string, options?: CsvCacheOptions<K, V>): Promise<CsvCache<K, V>> {
    return openCache(this, name, options, () => new this<K, V>(name, options));
  }
  constructor(name: string, options: CsvCacheOptions<K, V> = {}) {
    const files = csvStore(name, options);
    super(name, throughStore(options, files, CSV_KEEPS), files);
  }

  /** A CSV row holds what rowBuilder makes of a value: no expiry time. */
  protected override get keepsExpiryTimes(): boolean {
    return false;
  }
}

/** A {@link CsvCache} that saves itself as edits pile up (CacheMan's AutoSyncCSVCache). */
export class AutoSyncCsvCache<K = unknown, V = unknown> extends AutoSyncCache<K, V> {
  static override open<K = unknown, V = unknown>(
    name: string,
    options?: AutoSyncCsvCacheOptions<K, V>,
  ): Promise<AutoSyncCsvCache<K, V>> {
    return openCache(this, name, options, () => new this<K, V>(name, options));
  }
  constructor(name: string, options: AutoSyncCsvCacheOptions<K, V> = {}) {
    const files = csvStore(name, options);
    super(name, throughStore(options, files, CSV_KEEPS), files);
  }

  protected override get keepsExpiryTimes(): boolean {
    return false;
  }
}

/**
 * A persistent cache kept as readable, hand-editable `<name>.json`, with types kept through a
 * reversible encoding (Maps, Dates, BigInt...), written atomically; a damaged file is moved
 * aside like a corrupt v8 file.
 */
export class JsonCache<K = unknown, V = unknown> extends PersistentCache<K, V> {
  static override open<K = unknown, V = unknown>(name: string, options?: PersistentCacheOptions<K, V>): Promise<JsonCache<K, V>> {
    return openCache(this, name, options, () => new this<K, V>(name, options));
  }
  constructor(name: string, options: PersistentCacheOptions<K, V> = {}) {
    const files = jsonStore(options);
    super(name, throughStore(options, files, JSON_KEEPS), files);
  }
}

/** A {@link JsonCache} that saves itself as edits pile up. */
export class AutoSyncJsonCache<K = unknown, V = unknown> extends AutoSyncCache<K, V> {
  static override open<K = unknown, V = unknown>(name: string, options?: AutoSyncCacheOptions<K, V>): Promise<AutoSyncJsonCache<K, V>> {
    return openCache(this, name, options, () => new this<K, V>(name, options));
  }
  constructor(name: string, options: AutoSyncCacheOptions<K, V> = {}) {
    const files = jsonStore(options);
    super(name, throughStore(options, files, JSON_KEEPS), files);
  }
}

const CSV_OPTIONS = ['rowBuilder', 'rowReader', 'header'];
declareOptions(CsvCache, CSV_OPTIONS);
declareOptions(AutoSyncCsvCache, CSV_OPTIONS);
declareOptions(JsonCache, []);
declareOptions(AutoSyncJsonCache, []);
