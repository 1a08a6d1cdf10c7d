import type { Redis } from 'ioredis';
import * as v8 from 'node:v8';
import { AutoSyncCache, type AutoSyncCacheOptions } from '../auto-sync-cache';
import { CHANGE_SAVER, type CacheMap, type ChangeSet, opened } from '../cache';
import { CacheIOError, CorruptCacheFileError, DepcacheError } from '../errors';
import { type CacheManager, getCacheManager } from '../manager';
import { DecodedEntries, type CorruptFilePolicy } from '../store/file-store';

/** Options of a {@link RedisStore}. */
export interface RedisStoreOptions {
  /** A connected ioredis client (shared, not closed by the store), or a redis:// URL. */
  readonly redis: Redis | string;
  /** First part of every key: `<prefix>:<manager>:<cache>`. @default 'depcache' */
  readonly keyPrefix?: string;
  /** Fields per HSCAN step and per HSET batch. @default 1000 */
  readonly batchSize?: number;
  /** What damaged data does on load: moved aside (RENAME to `<key>:corrupt-<ts>`) and reported, or thrown. @default 'quarantine' */
  readonly onCorrupt?: CorruptFilePolicy;
}

// A field name no v8-serialized key can take (those start with 0xFF): the cache's own record.
const META_FIELD = Buffer.from('\u0000meta', 'latin1');

/**
 * Loader, saver and deleter that keep caches in Redis, one hash per cache
 * (`<prefix>:<manager>:<cache>`, one field per entry, both `v8.serialize`d). A save writes only
 * the entries changed since the last save (HSET/HDEL in one MULTI); a load streams with HSCAN.
 * Damaged data follows the file store's rules.
 *
 * @example
 * const store = new RedisStore({ redis: 'redis://127.0.0.1:6379' });
 * const users = await store.open('users', { manager });
 */
export class RedisStore {
  readonly client: Redis;
  readonly keyPrefix: string;
  readonly #batch: number;
  readonly #onCorrupt: CorruptFilePolicy;
  readonly #ownsClient: boolean;

  constructor(options: RedisStoreOptions) {
    const { redis, keyPrefix = 'depcache', batchSize = 1000, onCorrupt = 'quarantine' } = options ?? ({} as RedisStoreOptions);
    if (typeof redis === 'string') {
      this.client = newRedis(redis);
      this.#ownsClient = true;
    } else if (redis && typeof (redis as Redis).hscanBuffer === 'function') {
      this.client = redis;
      this.#ownsClient = false;
    } else {
      throw new TypeError('redis: expected an ioredis client or a redis:// URL');
    }
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new TypeError(`batchSize: expected a positive integer, got ${String(batchSize)}`);
    this.keyPrefix = keyPrefix;
    this.#batch = batchSize;
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
      await this.client.del(key);
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
    if (this.#ownsClient) await this.client.quit().catch(() => this.client.disconnect());
  }

  async #load(manager: CacheManager, name: string, key: string): Promise<DecodedEntries | undefined> {
    const pairs: unknown[] = [];
    let cursor = '0';
    let seenMeta = false;
    try {
      do {
        const [next, flat] = await this.client.hscanBuffer(key, cursor, 'COUNT', this.#batch);
        cursor = next.toString();
        for (let i = 0; i < flat.length; i += 2) {
          const field = flat[i] as Buffer;
          if (field.equals(META_FIELD)) {
            seenMeta = true;
            continue;
          }
          pairs.push(v8.deserialize(field), v8.deserialize(flat[i + 1] as Buffer));
        }
      } while (cursor !== '0');
    } catch (err) {
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
    await this.client.rename(key, target);
    manager.reportError(new CorruptCacheFileError(name, key, reason, { quarantinedTo: target }));
    return undefined;
  }

  async #save(name: string, key: string, live: CacheMap<unknown, unknown>, changes: ChangeSet<unknown>): Promise<number> {
    // A restarted (or flushed) Redis comes back empty: changes alone would lose the rest.
    if (!changes.all && (await this.client.hexists(key, META_FIELD)) === 0) {
      changes = { all: true, keys: changes.keys };
    }
    // Every value is serialized before the next await: the save is the map as it is now.
    const meta = Buffer.from(JSON.stringify({ savedAt: Date.now(), entries: live.size }));
    const multi = this.client.multi();
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
          sets.push(v8.serialize(k), v8.serialize(v));
          sent++;
          if (sets.length >= 2 * this.#batch) flush();
        }
      } else {
        const removed: Buffer[] = [];
        for (const k of changes.keys) {
          if (live.has(k)) sets.push(v8.serialize(k), v8.serialize(live.get(k)));
          else removed.push(v8.serialize(k));
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

/** ioredis is loaded only by those who use Redis: importing depcache does not pull it in. */
export function newRedis(url: string): Redis {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Redis: RedisClient } = require('ioredis') as typeof import('ioredis');
  return new RedisClient(url);
}
