import type { Redis } from 'ioredis';
import * as v8 from 'node:v8';
import { AutoSyncCache, type AutoSyncCacheOptions } from '../auto-sync-cache';
import { CHANGE_SAVER, type CacheMap, type ChangeSet, opened } from '../cache';
import { CacheIOError, CorruptCacheFileError, DepcacheError } from '../errors';
import { type CacheManager, getCacheManager } from '../manager';
import { DecodedEntries, type CorruptFilePolicy } from '../store/file-store';

/**
 * An ioredis client (`new Redis(url)` of ioredis 5), as depcache's options take it. Typed by its
 * shape, so that depcache's published types do not need ioredis installed by those who never
 * use Redis.
 */
export interface RedisClient {
  readonly status: string;
  hscanBuffer(...args: never[]): unknown;
  duplicate(...args: never[]): unknown;
  quit(): Promise<unknown>;
}

/** Options of a {@link RedisStore}. */
export interface RedisStoreOptions {
  /** A connected ioredis client (shared, not closed by the store), or a redis:// URL. */
  readonly redis: RedisClient | string;
  /** First part of every key: `<prefix>:<manager>:<cache>`. @default 'depcache' */
  readonly keyPrefix?: string;
  /** Fields per HSET batch. @default 1000 */
  readonly batchSize?: number;
  /** Fields asked for per HSCAN step (fewer round trips on load). @default 10000 */
  readonly scanCount?: number;
  /** What damaged data does on load: moved aside (RENAME to `<key>:corrupt-<ts>`) and reported, or thrown. @default 'quarantine' */
  readonly onCorrupt?: CorruptFilePolicy;
}

// Field names: v8-serialized keys start with 0xFF; string keys are stored as 0x01 + UTF-8 (a
// deserializer per key costs more than the whole HSCAN); 0x00 starts the cache's own record.
const META_FIELD = Buffer.from('\u0000meta', 'latin1');
const STRING_KEY = 0x01;

function encodeKey(key: unknown): Buffer {
  return typeof key === 'string' ? Buffer.from(`\u0001${key}`, 'utf8') : v8.serialize(key);
}

function decodeKey(field: Buffer): unknown {
  return field[0] === STRING_KEY ? field.toString('utf8', 1) : v8.deserialize(field);
}

// Values: v8.serialize (0xFF...), except plain JSON values, stored as 0x01 + JSON text: a v8
// deserializer per entry costs ~6 µs, JSON.parse a fraction of that, and for these values both
// give back exactly the same thing.
const JSON_VALUE = 0x01;

function encodeValue(value: unknown): Buffer {
  return isPlainJson(value, 0) ? Buffer.from(`\u0001${JSON.stringify(value)}`, 'utf8') : v8.serialize(value);
}

function decodeValue(buf: Buffer): unknown {
  return buf[0] === JSON_VALUE ? JSON.parse(buf.toString('utf8', 1)) : v8.deserialize(buf);
}

/**
 * Appends the entries of one HSCAN page (`[field, value, ...]`) to `out` as `k0, v0, ...`;
 * returns whether the page held the cache's own record. JSON values are parsed together, as
 * one array: a JSON.parse call per value costs 35% more than one call for the whole page.
 * @throws what decoding a damaged entry throws
 */
function decodePage(flat: Buffer[], out: unknown[]): boolean {
  let seenMeta = false;
  const jsonSlots: number[] = [];
  const jsonValues: Buffer[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const field = flat[i] as Buffer;
    const value = flat[i + 1] as Buffer;
    if (field[0] === 0 && field.equals(META_FIELD)) {
      seenMeta = true;
      continue;
    }
    out.push(decodeKey(field));
    if (value[0] === JSON_VALUE) {
      jsonSlots.push(out.length);
      jsonValues.push(value);
      out.push(undefined);
    } else out.push(decodeValue(value));
  }
  if (jsonValues.length > 0) {
    const parsed = parseJsonValues(jsonValues);
    for (let i = 0; i < jsonSlots.length; i++) out[jsonSlots[i] as number] = parsed[i];
  }
  return seenMeta;
}

/** The JSON values (each tagged 0x01) parsed as one array `[v0,v1,...]`, one result per value. */
function parseJsonValues(values: Buffer[]): unknown[] {
  let bytes = 1;
  for (const value of values) bytes += value.length; // the tag byte's place takes the comma
  const joined = Buffer.allocUnsafe(bytes);
  let at = 0;
  let separator = 0x5b; // '[' before the first value, ',' before the others
  for (const value of values) {
    joined[at++] = separator;
    separator = 0x2c;
    at += value.copy(joined, at, 1);
  }
  joined[at++] = 0x5d; // ']'
  let parsed: unknown;
  try {
    parsed = JSON.parse(joined.toString('utf8', 0, at));
  } catch {
    parsed = undefined;
  }
  // Every value was written by JSON.stringify, so the array has exactly one element per value.
  // A damaged value breaks the syntax or the count (only values crafted to cancel each other out
  // would not; a foreign writer can store wrong but well-formed values anyway): then decode one
  // by one, so the culprit throws.
  if (!Array.isArray(parsed) || parsed.length !== values.length) return values.map(decodeValue);
  return parsed;
}

/** True when JSON round-trips `value` exactly as v8 would: no -0, NaN, undefined, holes, Dates, Maps... */
function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object': {
      if (value === null) return true;
      if (depth > 32) return false; // deep or cyclic: v8 handles it
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!(i in value) || !isPlainJson(value[i], depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key of Object.keys(value)) {
        if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * Loader, saver and deleter that keep caches in Redis, one hash per cache
 * (`<prefix>:<manager>:<cache>`, one field per entry: keys and values `v8.serialize`d, except
 * string keys and plain-JSON values, stored as tagged UTF-8 to load several times faster with
 * the same result). A save writes only
 * the entries changed since the last save (HSET/HDEL in one MULTI); a load streams with HSCAN.
 * Damaged data follows the file store's rules.
 *
 * @example
 * const store = new RedisStore({ redis: 'redis://127.0.0.1:6379' });
 * const users = await store.open('users', { manager });
 */
export class RedisStore {
  /** The ioredis client. */
  readonly client: RedisClient;
  readonly #redis: Redis;
  readonly keyPrefix: string;
  readonly #batch: number;
  readonly #scanCount: number;
  readonly #onCorrupt: CorruptFilePolicy;
  readonly #ownsClient: boolean;

  constructor(options: RedisStoreOptions) {
    const { redis, keyPrefix = 'depcache', batchSize = 1000, scanCount = 10_000, onCorrupt = 'quarantine' } = options ?? ({} as RedisStoreOptions);
    if (typeof redis === 'string') {
      this.#redis = newRedis(redis);
      this.#ownsClient = true;
    } else if (redis && typeof redis.hscanBuffer === 'function') {
      this.#redis = redis as unknown as Redis;
      this.#ownsClient = false;
    } else {
      throw new TypeError('redis: expected an ioredis client or a redis:// URL');
    }
    this.client = this.#redis as unknown as RedisClient;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new TypeError(`batchSize: expected a positive integer, got ${String(batchSize)}`);
    this.keyPrefix = keyPrefix;
    this.#batch = batchSize;
    this.#scanCount = scanCount;
    this.#onCorrupt = onCorrupt;
  }

  /** The Redis key of a cache. */
  keyFor(manager: CacheManager, name: string): string {
    return `${this.keyPrefix}:${manager.name}:${name}`;
  }

  /**
   * Puts this store's loader, saver and deleter on `cache` and turns on change tracking, so
   * saves send only what changed. Returns the cache.
   */
  attach<C extends CacheMap<any, any>>(cache: C): C {
    const key = this.keyFor(cache.manager, cache.name);
    cache.loader = () => this.#load(cache.manager, cache.name, key);
    const saver = Object.assign(async () => undefined, {
      [CHANGE_SAVER]: (name: string, live: CacheMap<unknown, unknown>, changes: ChangeSet<unknown>) =>
        this.#save(name, key, live, changes),
    });
    cache.saver = saver;
    cache.deleter = async () => {
      await this.#redis.del(key);
    };
    cache.trackChanges();
    return cache;
  }

  /** An AutoSyncCache kept in Redis, loaded or built. */
  open<K = unknown, V = unknown>(name: string, options: AutoSyncCacheOptions<K, V> = {}): Promise<AutoSyncCache<K, V>> {
    const manager = options.manager ?? getCacheManager();
    return opened(this.attach(new AutoSyncCache<K, V>(name, { ...options, manager })));
  }

  /** Quits the connection if this store opened it. */
  async close(): Promise<void> {
    if (this.#ownsClient) await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  async #load(manager: CacheManager, name: string, key: string): Promise<DecodedEntries | undefined> {
    const pairs: unknown[] = [];
    let seenMeta = false;
    let page: Promise<[Buffer, Buffer[]]> | undefined;
    try {
      // The next page is requested before this one is decoded: Redis works while we parse.
      page = this.#redis.hscanBuffer(key, '0', 'COUNT', this.#scanCount);
      for (;;) {
        const [next, flat]: [Buffer, Buffer[]] = await page;
        const cursor: string = next.toString();
        if (cursor !== '0') page = this.#redis.hscanBuffer(key, cursor, 'COUNT', this.#scanCount);
        if (decodePage(flat, pairs)) seenMeta = true;
        if (cursor === '0') break;
      }
    } catch (err) {
      page?.catch(() => undefined); // a page still in flight must not reject unhandled
      if (!(err instanceof Error) || isConnectionError(err)) throw new CacheIOError(name, key, 'read from Redis', err);
      return this.#corrupt(manager, name, key, `an entry does not deserialize (${err.message})`);
    }
    if (pairs.length === 0 && !seenMeta) return undefined; // nothing saved
    if (!seenMeta) return this.#corrupt(manager, name, key, 'the cache record is missing');
    return new DecodedEntries([pairs], { name, savedAt: 0, entries: pairs.length / 2 });
  }

  async #corrupt(manager: CacheManager, name: string, key: string, reason: string): Promise<undefined> {
    if (this.#onCorrupt === 'throw') throw new CorruptCacheFileError(name, key, reason);
    const target = `${key}:corrupt-${Date.now()}`;
    await this.#redis.rename(key, target);
    manager.reportError(new CorruptCacheFileError(name, key, reason, { quarantinedTo: target }));
    return undefined;
  }

  async #save(name: string, key: string, live: CacheMap<unknown, unknown>, changes: ChangeSet<unknown>): Promise<number> {
    // A restarted (or flushed) Redis comes back empty: changes alone would lose the rest.
    if (!changes.all && (await this.#redis.hexists(key, META_FIELD)) === 0) {
      changes = { all: true, keys: changes.keys };
    }
    // Every value is serialized before the next await: the save is the map as it is now.
    const meta = Buffer.from(JSON.stringify({ savedAt: Date.now(), entries: live.size }));
    const multi = this.#redis.multi();
    let sent = 0;
    const sets: Buffer[] = [];
    const flush = () => {
      if (sets.length > 0) multi.hset(key, ...sets);
      sets.length = 0;
    };
    try {
      if (changes.all) {
        multi.del(key);
        for (const [k, v] of live) {
          sets.push(encodeKey(k), encodeValue(v));
          sent++;
          if (sets.length >= 2 * this.#batch) flush();
        }
      } else {
        const removed: Buffer[] = [];
        for (const k of changes.keys) {
          if (live.has(k)) sets.push(encodeKey(k), encodeValue(live.get(k)));
          else removed.push(encodeKey(k));
          sent++;
          if (sets.length >= 2 * this.#batch) flush();
          if (removed.length >= this.#batch) multi.hdel(key, ...removed.splice(0));
        }
        if (removed.length > 0) multi.hdel(key, ...removed);
      }
    } catch (err) {
      // Nothing was sent: ioredis queues a transaction until exec().
      throw new DepcacheError('ESERIALIZE', `${name}: cannot serialize an entry for Redis: ${(err as Error).message}`, { cause: err });
    }
    sets.push(META_FIELD, meta);
    flush();
    const results = await multi.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw new CacheIOError(name, key, 'write to Redis', failed?.[0] ?? new Error('transaction aborted'));
    return sent;
  }
}

function isConnectionError(err: Error): boolean {
  return /connect|Connection|ECONN|closed|MaxRetriesPerRequest|ETIMEDOUT|EPIPE/i.test(`${err.name} ${err.message}`);
}

/**
 * ioredis is an optional peer dependency, loaded only by those who use Redis: importing depcache
 * does not pull it in. @throws {Error} naming the package when it is not installed @internal
 */
export function newRedis(url: string): Redis {
  let ioredis: typeof import('ioredis');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ioredis = require('ioredis') as typeof import('ioredis');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    throw Object.assign(
      new Error("depcache's Redis features need the ioredis package (5.x), which is not installed: npm install ioredis@5", { cause: err }),
      { code: 'MODULE_NOT_FOUND' },
    );
  }
  return new ioredis.Redis(url);
}
