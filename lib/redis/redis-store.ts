import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { AutoSyncCache, type AutoSyncCacheOptions } from '../auto-sync-cache';
import type { CacheMap } from '../cache';
import type { SavedUpdate } from '../cache-merge';
import { opened } from '../cache-options';
import { CHANGE_SAVER, type ChangeParts, type ChangeSet, SPILL_SYNC } from '../store/saver-marks';
import { CorruptCacheFileError, DepcacheError, ManagerClosedError } from '../errors';
import { type CacheManager, getCacheManager } from '../manager';
import type { CorruptFilePolicy } from '../store/file-store';
import { DecodedEntries } from '../store/decoded-entries';
import type { JournalRecord } from '../store/journal';
import { type OwnFields, EPOCH_FIELD, VERSION_FIELD, decodeKey, decodePage, decodeValue, encodeKey, encodeValue } from './codec';
import { RedisDataLostError, RedisUnavailableError } from './errors';
import { ConnectionHold } from './connection-hold';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { writeAllSync, writeFileAtomicSync } from '../store/atomic-file';
import { journalSteps } from '../store/base-meta';
import { FormatError } from '../store/file-format';
import { cacheFileName } from '../store/file-name';
import { openCacheFileSync, parseFileSync } from '../store/file-reader';
import { encodeJournalHeader, encodeJournalRecord } from '../store/journal';
import { cacheKey, checkKeyPrefix, logKey, packFields, snapshotKey, unpackFields } from './keys';
import { DELETE_SCRIPT, HEAD_SCRIPT, RECOVER_SCRIPT, SAVE_SCRIPT, SNAPSHOT_BEGIN_SCRIPT, SNAPSHOT_COMMIT_SCRIPT } from './scripts';
import { parsePointer, readSnapshotParts, writeSnapshotParts } from './snapshot';
import type { EntrySnapshot } from '../store/snapshot';
import type { MemorySnapshotSource } from '../store/file-store';

/**
 * An ioredis client (`new Redis(url)` or `new Cluster(nodes)` of ioredis 5), as depcache's
 * options take it. Typed by its shape, so that depcache's published types do not need ioredis
 * installed by those who never use Redis.
 */
export interface RedisClient {
  readonly status: string;
  hscanBuffer(...args: never[]): unknown;
  duplicate(...args: never[]): unknown;
  quit(): Promise<unknown>;
}

/** Options of a {@link RedisStore}. */
export interface RedisStoreOptions {
  /** A connected ioredis client or Cluster (shared, not closed by the store), or a redis:// or rediss:// URL. */
  readonly redis: RedisClient | string;
  /** First part of every key: `<prefix>:{<manager>:<cache>}`. No braces. @default 'depcache' */
  readonly keyPrefix?: string;
  /** Fields per write command (at most 3000). @default 1000 */
  readonly batchSize?: number;
  /** Fields asked for per HSCAN step (fewer round trips on load). @default 10000 */
  readonly scanCount?: number;
  /** What damaged data does on load: moved aside (RENAME to `<key>:corrupt-<ts>`) and reported, or thrown. @default 'quarantine' */
  readonly onCorrupt?: CorruptFilePolicy;
  /**
   * A cache of at least this many entries also keeps a snapshot in Redis: its entries packed in
   * deflated parts (a full load reads a few dozen replies instead of one per entry, and decodes
   * as a file load does), beside the hash, which stays the whole truth. `Infinity`: never.
   * @default 10000
   */
  readonly snapshotMinEntries?: number;
  /** A new snapshot is written once the entries changed since the last one pass this share of it. @default 0.1 */
  readonly snapshotShare?: number;
  /**
   * How long one load, save or delete waits for Redis before it fails with
   * RedisUnavailableError (`timedOut`). A save that timed out stays unsaved and is sent again
   * by the next save. @default 10000
   */
  readonly timeoutMs?: number;
}

/**
 * What a save announces to followers: the changed fields, or that everything changed; and the
 * hash's versions before and after, when the save was one step (`epoch version version`).
 */
interface SaveDetail {
  readonly fields?: Buffer;
  readonly whole?: boolean;
  readonly step?: string;
}

/** A state of the hash: its epoch and version. */
interface HashState {
  readonly epoch: string;
  readonly version: number;
}

// Spill files: `<cache file name>.redis-spill-<pid>-<random>` in the manager's directory.
const SPILL_EXTENSION = '.redis-spill';

// Saves of more fields than this announce "everything changed": followers reload the cache
// instead of fetching a long field list.
const FOLLOW_FIELDS_MAX = 10_000;
// How long a save issues batches before the event loop gets a turn.
const SEND_SLICE_MS = 5;

/**
 * The keys this process saved itself (since it loaded the cache), which a recovery writes over
 * anything: `all` means every key but those in `except`.
 */
class OwnKeys {
  all = false;
  readonly keys = new Set<unknown>();
  /**
   * Keys whose deletion this process saved, named one by one even while `all` holds: a
   * write-back leaves a tombstone for each, or another process's stale copy would bring it back.
   */
  readonly deleted = new Set<unknown>();
  has(key: unknown): boolean {
    return this.all ? !this.keys.has(key) : this.keys.has(key);
  }
  add(key: unknown, deleted = false): void {
    if (this.all) this.keys.delete(key);
    else this.keys.add(key);
    if (deleted) this.deleted.add(key);
    else this.deleted.delete(key);
  }
  remove(key: unknown): void {
    if (this.all) this.keys.add(key);
    else this.keys.delete(key);
    this.deleted.delete(key);
  }
  setAll(): void {
    this.all = true;
    this.keys.clear();
  }
  forgetAll(): void {
    this.all = false;
    this.keys.clear();
    this.deleted.clear();
  }
  /** From "all but the exceptions" to the keys of `present` that are own. */
  narrowTo(present: Iterable<unknown>): void {
    if (!this.all) return;
    const own: unknown[] = [];
    for (const key of present) if (!this.keys.has(key)) own.push(key);
    this.all = false;
    this.keys.clear();
    for (const key of own) this.keys.add(key);
  }
}

/** What the store knows of one attached cache. */
interface Tracked {
  readonly cache: CacheMap<unknown, unknown>;
  readonly key: string;
  /** The epoch of the saved state this process last read or wrote; undefined: none known. */
  epoch: string | undefined;
  readonly own: OwnKeys;
  /** Redis lost the data (seen on reconnect): the next save writes back what is here first. */
  recover: boolean;
  /** Where an older depcache kept this cache (names without ':' only: those were unambiguous). */
  readonly legacyKey: string | undefined;
  /** Loaded from the legacy key: the next save writes every entry to the new one. */
  migrate: boolean;
  /**
   * The state of the hash that this process's memory holds, as last loaded or saved (unsaved
   * edits aside, which keep a snapshot from being written); undefined: not known to be any.
   */
  synced: HashState | undefined;
  /** A snapshot of this cache is being written. */
  snapshotting: boolean;
}

type ScriptRunner = (key: string, ...args: Array<string | Buffer>) => Promise<unknown>;

/** A full read of a cache's hash (or of its snapshot and the changes since). */
interface HashRead {
  readonly own: OwnFields;
  /** The hash has no field at all. */
  readonly empty: boolean;
  /** Entries read (with a snapshot: its entries plus the keys set since, about). */
  readonly entries: number;
  readonly decoded: DecodedEntries;
  /** The state read, when the read was consistent (no change while it ran). */
  readonly state: HashState | undefined;
  /** A new snapshot would pay (none yet, or many changes since the last). */
  readonly snapshotDue: boolean;
}

/**
 * A save batch's reply: status, epoch, version, log size (-1: none), current snapshot, made the
 * hash, found an older depcache's save (which bumps no version) since the last of ours.
 */
type SaveReply = [string, string, number, number, string, boolean, boolean];

/**
 * Loader, saver and deleter that keep caches in Redis, one hash per cache
 * (`<prefix>:{<manager>:<cache>}`, one field per entry: keys and values `v8.serialize`d, except
 * string keys and plain-JSON values, stored as tagged UTF-8 to load several times faster with
 * the same result). A save writes only the entries changed since the last save, in one atomic
 * script per batch that first checks the hash is the one this process knows; a load streams
 * with HSCAN. When Redis lost the data, processes write back what they hold instead of losing
 * it. Damaged data follows the file store's rules.
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
  readonly #timeoutMs: number;
  readonly #tracked = new Map<CacheMap<unknown, unknown>, Tracked>();
  readonly #managers = new Set<CacheManager>();
  readonly #save: ScriptRunner;
  readonly #recoverBatch: ScriptRunner;
  readonly #delete: ScriptRunner;
  readonly #head: ScriptRunner;
  readonly #snapshotBegin: ScriptRunner;
  readonly #snapshotCommit: ScriptRunner;
  readonly #snapshotMinEntries: number;
  readonly #snapshotShare: number;
  readonly #hold: ConnectionHold;
  #wasReady = false;
  #outage = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: RedisStoreOptions) {
    const {
      redis,
      keyPrefix = 'depcache',
      batchSize = 1000,
      scanCount = 10_000,
      onCorrupt = 'quarantine',
      timeoutMs = 10_000,
      snapshotMinEntries = 10_000,
      snapshotShare = 0.1,
    } = options ?? ({} as RedisStoreOptions);
    if (!(snapshotMinEntries === Number.POSITIVE_INFINITY || (Number.isInteger(snapshotMinEntries) && snapshotMinEntries >= 1))) {
      throw new TypeError(`snapshotMinEntries: expected a whole number ≥ 1 or Infinity, got ${String(snapshotMinEntries)} (${typeof snapshotMinEntries})`);
    }
    if (!(typeof snapshotShare === 'number' && snapshotShare > 0 && snapshotShare <= 0.5)) {
      throw new TypeError(`snapshotShare: expected a number > 0 and ≤ 0.5, got ${String(snapshotShare)} (${typeof snapshotShare})`);
    }
    this.#snapshotMinEntries = snapshotMinEntries;
    this.#snapshotShare = snapshotShare;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 3000) {
      throw new TypeError(`batchSize: expected a whole number from 1 to 3000, got ${String(batchSize)}`);
    }
    if (!(typeof timeoutMs === 'number' && timeoutMs > 0)) throw new TypeError(`timeoutMs: expected a number > 0, got ${String(timeoutMs)}`);
    this.keyPrefix = checkKeyPrefix(keyPrefix);
    if (typeof redis === 'string') {
      this.#redis = newRedis(redis);
      this.#ownsClient = true;
    } else if (redis && typeof redis.hscanBuffer === 'function') {
      this.#redis = redis as unknown as Redis;
      this.#ownsClient = false;
    } else {
      throw new TypeError('redis: expected an ioredis client or Cluster, or a redis:// URL');
    }
    this.client = this.#redis as unknown as RedisClient;
    this.#hold = new ConnectionHold(this.#redis, this.#ownsClient);
    this.#batch = batchSize;
    this.#scanCount = scanCount;
    this.#onCorrupt = onCorrupt;
    this.#timeoutMs = timeoutMs;
    // Named by their keys' layout, so a client shared with an older depcache runs each its own.
    this.#save = script(this.#redis, 'depcacheSave3', SAVE_SCRIPT);
    this.#recoverBatch = script(this.#redis, 'depcacheRecover3', RECOVER_SCRIPT);
    this.#delete = script(this.#redis, 'depcacheDelete3', DELETE_SCRIPT);
    this.#head = script(this.#redis, 'depcacheHead3', HEAD_SCRIPT, true);
    this.#snapshotBegin = script(this.#redis, 'depcacheSnapshotBegin3', SNAPSHOT_BEGIN_SCRIPT);
    this.#snapshotCommit = script(this.#redis, 'depcacheSnapshotCommit3', SNAPSHOT_COMMIT_SCRIPT);
    // One report per outage, to every manager with a cache here; ioredis reconnects by itself.
    // Without a listener, ioredis prints every failed reconnect as an unhandled error event.
    this.#redis.on('error', (err: Error) => {
      if (this.#outage || this.#closed) return;
      this.#outage = true;
      for (const manager of this.#managers) manager.reportError(new RedisUnavailableError('', this.keyPrefix, 'connection', err));
    });
    this.#redis.on('ready', () => {
      this.#outage = false;
      if (this.#wasReady) this.#checkAfterReconnect();
      this.#wasReady = true;
    });
    if (this.#redis.status === 'ready') this.#wasReady = true;
  }

  /** The Redis key of a cache. */
  keyFor(manager: CacheManager, name: string): string {
    return cacheKey(this.keyPrefix, manager.name, name);
  }

  /**
   * Puts this store's loader, saver and deleter on `cache` and turns on change tracking, so
   * saves send only what changed. Returns the cache.
   */
  attach<C extends CacheMap<any, any>>(cache: C): C {
    const key = this.keyFor(cache.manager, cache.name);
    const legacyKey = `${cache.manager.name}${cache.name}`.includes(':') ? undefined : `${this.keyPrefix}:${cache.manager.name}:${cache.name}`;
    const tracked: Tracked = {
      cache,
      key,
      epoch: undefined,
      own: new OwnKeys(),
      recover: false,
      legacyKey,
      migrate: false,
      synced: undefined,
      snapshotting: false,
    };
    this.#tracked.set(cache, tracked);
    this.#managers.add(cache.manager);
    cache.loader = () => this.#load(tracked);
    cache.saver = Object.assign(async () => undefined, {
      [CHANGE_SAVER]: (_name: string, live: ReadonlyMap<unknown, unknown>, changes: ChangeSet<unknown>, parts: ChangeParts) =>
        this.#saveChanges(tracked, live, changes, parts),
      [SPILL_SYNC]: (live: ReadonlyMap<unknown, unknown>, changes: ChangeSet<unknown>) => this.#spill(tracked, live, changes),
    });
    cache.followShared = (detail: unknown) => this.#follow(tracked, detail as SaveDetail | undefined);
    cache.manager.saveSharedAtExit();
    cache.deleter = async () => {
      const epoch = `d:${randomUUID()}`;
      await this.#call(tracked, 'delete from Redis', () => this.#delete(key, epoch));
      tracked.epoch = epoch;
      tracked.synced = undefined;
      tracked.own.forgetAll();
    };
    cache.trackChanges();
    return cache;
  }

  /** An AutoSyncCache kept in Redis, loaded or built. */
  open<K = unknown, V = unknown>(name: string, options: AutoSyncCacheOptions<K, V> = {}): Promise<AutoSyncCache<K, V>> {
    const manager = options.manager ?? getCacheManager();
    return opened(this.attach(new AutoSyncCache<K, V>(name, { ...options, manager })));
  }

  /**
   * Saves the unsaved edits of its caches whose manager is still open, then quits the
   * connection if this store opened it, once the snapshots being written are done. Either
   * order of `store.close()` and `manager.close()` keeps the edits: after this, the manager's
   * close finds them saved. A save that fails is thrown once the connection is closed (the
   * store is closed either way). Safe to call twice, or while another close runs: every call
   * settles with the first.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const failures: unknown[] = [];
      for (const tracked of this.#tracked.values()) {
        const { cache } = tracked;
        if (cache.dirtyEdits === 0 && !tracked.recover && !tracked.migrate) continue;
        try {
          await cache.save(false);
        } catch (err) {
          // A closed manager saved what it could on its own close: nothing left to do here.
          if (!(err instanceof ManagerClosedError)) failures.push(err);
        }
      }
      for (const { cache } of this.#tracked.values()) await cache.backgroundSettled();
      this.#closed = true;
      if (this.#ownsClient) await this.#hold.quit(this.#timeoutMs);
      if (failures.length === 1) throw failures[0];
      if (failures.length > 1) throw new AggregateError(failures, `${this.keyPrefix}: saves failed on close`);
    })();
    return this.#closing;
  }

  /** Runs one Redis call for a cache, within the timeout, failures as RedisUnavailableError. */
  #call<T>(tracked: Tracked, action: string, fn: () => Promise<T>): Promise<T> {
    // Held until it settles or times out, not until ioredis gives the command up (which, with
    // Redis down, can take many reconnect attempts).
    return this.#hold.hold(
      () =>
        new Promise<T>((resolve, reject) => {
          const timer = setTimeout(() => {
            reject(new RedisUnavailableError(tracked.cache.name, tracked.key, action, new Error(`no answer within ${this.#timeoutMs} ms`), true));
          }, this.#timeoutMs);
          timer.unref();
          fn().then(
            (value) => {
              clearTimeout(timer);
              resolve(value);
            },
            (err: unknown) => {
              clearTimeout(timer);
              reject(err instanceof DepcacheError ? err : new RedisUnavailableError(tracked.cache.name, tracked.key, action, err));
            },
          );
        }),
    );
  }

  async #load(tracked: Tracked, from = tracked.key): Promise<DecodedEntries | undefined> {
    const { cache } = tracked;
    const key = from;
    if (from === tracked.key) await this.#replaySpills(tracked);
    tracked.synced = undefined;
    let read: HashRead | undefined;
    try {
      read = from === tracked.key ? await this.#readWithSnapshot(tracked) : undefined;
      read ??= await this.#scan(tracked, key);
    } catch (err) {
      if (!(err instanceof RedisUnavailableError) || !(err.cause instanceof DecodeError)) throw err;
      return this.#corrupt(tracked, `an entry does not deserialize (${err.cause.message})`, key);
    }
    const { own, empty } = read;
    if (empty && tracked.epoch !== undefined && cache.hasContents && !tracked.epoch.startsWith('d:')) {
      // Redis lost what this process had read or written (a restart without persistence): the
      // memory here may be the only copy left. Write it back rather than load nothing.
      // As saved: values with their expiry times, so the load below keeps them.
      const saved = cache.savedView();
      const rewritten = await this.#recover(tracked, saved, new Set());
      cache.manager.reportError(new RedisDataLostError(cache.name, key, rewritten));
      const copy: unknown[] = [];
      for (const [k, v] of saved) copy.push(k, v);
      return new DecodedEntries([copy], { name: cache.name, savedAt: 0, entries: copy.length / 2 });
    }
    if (
      from === tracked.key &&
      own.epoch !== undefined &&
      afterLoss(own.epoch) &&
      tracked.epoch !== undefined &&
      own.epoch !== tracked.epoch &&
      !tracked.epoch.startsWith('d:') &&
      cache.hasContents
    ) {
      // Another process wrote back what Redis lost before this one did, or saved the cache anew
      // from nothing: what it holds of this process's keys may be older than what this process
      // saved, or missing. Write back first, then read.
      const rewritten = await this.#recover(tracked, cache.savedView(), new Set());
      cache.manager.reportError(new RedisDataLostError(cache.name, key, rewritten));
      return this.#load(tracked);
    }
    if (empty && tracked.epoch === undefined && tracked.legacyKey !== undefined && from !== tracked.legacyKey) {
      // Saved by an older depcache under the old key name: read it; the next save copies it over.
      const legacy = await this.#load(tracked, tracked.legacyKey);
      tracked.migrate = legacy !== undefined;
      return legacy;
    }
    if (from === tracked.key) tracked.epoch = own.epoch;
    // What was read may hold other processes' writes: "every key is this process's own" becomes
    // the keys it holds now that are its own (they stay its own after the load).
    if (tracked.own.all) tracked.own.narrowTo(cache.hasContents ? Map.prototype.keys.call(cache) : []);
    if (read.entries === 0 && !own.meta) return undefined; // nothing saved, or deleted
    if (!own.meta) return this.#corrupt(tracked, 'the cache record is missing', key);
    if (from === tracked.key && read.state !== undefined) {
      // A consistent read: once the cache holds it, memory is that state of the hash.
      tracked.synced = read.state;
      if (read.snapshotDue && read.entries >= this.#snapshotMinEntries) this.#snapshotSoon(tracked);
    }
    return read.decoded;
  }

  /**
   * Reads the whole hash page by page (HSCAN). `state` is the hash's state when nothing changed
   * it while the pages were read (its version before and after), else undefined.
   */
  async #scan(tracked: Tracked, key: string): Promise<HashRead> {
    const { cache } = tracked;
    const pairs: unknown[] = [];
    const own: OwnFields = { meta: false, epoch: undefined };
    let empty = true;
    let state: HashState | undefined;
    await this.#call(tracked, 'read from Redis', async () => {
      const before = key === tracked.key ? await this.#stateOf(key) : undefined;
      let page: Promise<[Buffer, Buffer[]]> | undefined;
      try {
        // The next page is requested before this one is decoded: Redis works while we parse.
        page = this.#redis.hscanBuffer(key, '0', 'COUNT', this.#scanCount);
        for (;;) {
          const [next, flat]: [Buffer, Buffer[]] = await page;
          const cursor: string = next.toString();
          if (cursor !== '0') page = this.#redis.hscanBuffer(key, cursor, 'COUNT', this.#scanCount);
          if (flat.length > 0) empty = false;
          decodePage(flat, pairs, own);
          if (cursor === '0') break;
        }
      } catch (err) {
        page?.catch(() => undefined); // a page still in flight must not reject unhandled
        if (err instanceof Error && !isConnectionError(err)) throw new DecodeError(err.message);
        throw err;
      }
      const after = before === undefined ? undefined : await this.#stateOf(key);
      if (before !== undefined && after !== undefined && before.epoch === after.epoch && before.version === after.version) state = after;
    });
    const entries = pairs.length / 2;
    const decoded = new DecodedEntries([pairs], { name: cache.name, savedAt: 0, entries });
    return { own, empty, entries, decoded, state, snapshotDue: state !== undefined };
  }

  /** The hash's epoch and version, or undefined when it has no epoch. */
  async #stateOf(key: string): Promise<HashState | undefined> {
    const [epoch, version] = await this.#redis.hmgetBuffer(key, EPOCH_FIELD, VERSION_FIELD);
    return epoch === null || epoch === undefined ? undefined : { epoch: epoch.toString('latin1'), version: Number(version ?? 0) };
  }

  /**
   * Reads the cache through its snapshot, when it has a current one: the snapshot's parts, then
   * the fields changed since, read atomically with the snapshot's name. Undefined when it has
   * none (or it is damaged, which is reported): the caller reads the hash instead.
   */
  async #readWithSnapshot(tracked: Tracked): Promise<HashRead | undefined> {
    const { cache, key } = tracked;
    // A snapshot replaced while it is read is read again: twice at most, then the hash.
    for (let attempt = 0; attempt < 3; attempt++) {
      const head = (await this.#call(tracked, 'read from Redis', () => this.#head(key))) as Array<Buffer | string | number | null>;
      const text = head[3];
      const pointer = text === null || text === undefined ? undefined : parsePointer(String(text));
      if (pointer === undefined) return undefined;
      const own: OwnFields = { meta: Number(head[1]) === 1, epoch: head[0] === null ? undefined : String(head[0]) };
      let whole: Awaited<ReturnType<typeof readSnapshotParts>>;
      let changed: JournalRecord;
      try {
        changed = changedSince(head.slice(4) as Array<Buffer | null>);
        whole = await this.#call(tracked, 'read from Redis', () =>
          readSnapshotParts(cache.name, pointer, (field) => this.#redis.hgetBuffer(snapshotKey(key), field)),
        );
      } catch (err) {
        const reason = err instanceof RedisUnavailableError ? err.cause : err;
        if (!(reason instanceof FormatError) && !(reason instanceof DecodeError)) throw err;
        // The hash is the whole truth and is read instead; the next snapshot replaces this one.
        cache.manager.reportError(new CorruptCacheFileError(cache.name, snapshotKey(key), `its snapshot is damaged (${reason.message}); read from the hash instead`));
        return undefined;
      }
      if (whole === undefined) continue;
      const { batches } = whole;
      const entries = pointer.entries + changed.sets.length / 2;
      const decoded = new DecodedEntries(batches, { name: cache.name, savedAt: 0, entries }, [changed]);
      const state = own.epoch === undefined ? undefined : { epoch: own.epoch, version: Number(head[2]) };
      const logged = changed.sets.length / 2 + changed.deletes.length;
      return { own, empty: false, entries, decoded, state, snapshotDue: logged > this.#snapshotShare * pointer.entries };
    }
    return undefined;
  }

  async #corrupt(tracked: Tracked, reason: string, key: string): Promise<undefined> {
    const { cache } = tracked;
    if (this.#onCorrupt === 'throw') throw new CorruptCacheFileError(cache.name, key, reason);
    // The hash tag is kept, so the copy is in the same Cluster slot and RENAME works there.
    const target = `${key}:corrupt-${Date.now()}`;
    await this.#call(tracked, 'quarantine in Redis', () => this.#redis.rename(key, target));
    tracked.epoch = undefined;
    cache.manager.reportError(new CorruptCacheFileError(cache.name, key, reason, { quarantinedTo: target }));
    return undefined;
  }

  async #saveChanges(tracked: Tracked, live: ReadonlyMap<unknown, unknown>, changes: ChangeSet<unknown>, parts: ChangeParts): Promise<SaveDetail> {
    const { cache, key } = tracked;
    if (tracked.recover) {
      const rewritten = await this.#recover(tracked, live, changes.keys);
      cache.manager.reportError(new RedisDataLostError(cache.name, key, rewritten));
      return { whole: true };
    }
    const entries = live.size; // as the save began: the parts below are read across turns of the loop
    const sets: Buffer[] = [];
    const dels: Buffer[] = [];
    const written: unknown[] = [];
    const gone = new Set<unknown>();
    try {
      if (tracked.migrate) {
        // Loaded from the key of an older naming: the first save writes every entry to the new key, merging.
        changes = { all: true, reset: false, keys: changes.keys };
        for (const [k, v] of live) sets.push(encodeKey(k), encodeValue(v));
        for (const k of changes.keys) {
          if (live.has(k)) continue;
          dels.push(encodeKey(k));
          gone.add(k);
        }
      } else {
        // The changes as they were when the save began, encoded a part at a time (the core
        // yields to the event loop between slices), so a save of a million keys is no one stall.
        for await (const part of parts) {
          const partSets = part.sets;
          for (let i = 0; i < partSets.length; i += 2) {
            sets.push(encodeKey(partSets[i]), encodeValue(partSets[i + 1]));
            if (!changes.all) written.push(partSets[i]);
          }
          for (const k of part.deletes) {
            dels.push(encodeKey(k));
            gone.add(k);
            if (!changes.all) written.push(k);
          }
        }
      }
    } catch (err) {
      if (err instanceof DepcacheError) throw err;
      throw new DepcacheError('ESERIALIZE', `${cache.name}: cannot serialize an entry for Redis: ${(err as Error).message}`, { cause: err });
    }
    if (!changes.all && sets.length === 0 && dels.length === 0 && tracked.epoch !== undefined) return {};
    const mode = changes.all ? (changes.reset ? 'reset' : 'merge') : 'delta';
    const meta = JSON.stringify({ savedAt: Date.now(), entries });
    const created = `e:${randomUUID()}`;
    const expected = tracked.epoch ?? '';
    const replies = await this.#call(tracked, 'write to Redis', async () => {
      const calls: Array<Promise<unknown>> = [];
      let s = 0;
      let d = 0;
      let first = true;
      let sliceStart = performance.now();
      while (first || s < sets.length || d < dels.length) {
        const pairs = sets.slice(s, s + 2 * this.#batch);
        s += pairs.length;
        const gone = pairs.length === 0 ? dels.slice(d, d + this.#batch) : [];
        d += gone.length;
        // Later batches merge into what the first one found or made.
        const call = this.#save(key, expected, first ? mode : 'merge', created, first ? meta : '', String(pairs.length / 2), ...pairs, ...gone);
        call.catch(() => undefined); // awaited below, with the others
        calls.push(call);
        first = false;
        // Issuing a batch writes its command to the socket: hundreds of them in one go were a
        // stall of their own. The connection keeps them in order across the turns of the loop.
        if (performance.now() - sliceStart >= SEND_SLICE_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          sliceStart = performance.now();
        }
      }
      return Promise.all(calls);
    });
    const results = (replies as unknown[][]).map(saveReply);
    const [, epoch] = results[0] as SaveReply;
    // Any batch may find the hash lost or written back (another client can run between them).
    if (results.some((r) => r[0] !== 'ok')) {
      // Redis lost this cache (or another process already wrote it back): write back what is here.
      const rewritten = await this.#recover(tracked, live, changes.keys);
      cache.manager.reportError(new RedisDataLostError(cache.name, key, rewritten));
      return { whole: true };
    }
    // Later batches ran after the first (one connection, in order); their epoch is the same.
    tracked.epoch = mode === 'reset' ? created : epoch;
    tracked.migrate = false;
    if (changes.all) tracked.own.setAll();
    else for (const k of written) tracked.own.add(k, gone.has(k));
    if (changes.all) for (const k of gone) tracked.own.add(k, true);
    const step = this.#afterSave(tracked, live, mode, results);
    if (changes.all || written.length > FOLLOW_FIELDS_MAX) return { whole: true };
    const fields: Buffer[] = [];
    for (let i = 0; i < sets.length; i += 2) fields.push(sets[i] as Buffer);
    for (const f of dels) fields.push(f);
    return { fields: packFields(fields), step };
  }

  /**
   * Follows the hash's state through a save: memory is still the state it was at (plus this
   * save) only when the batches' versions follow on from it with no other writer's in between.
   * Starts a snapshot when one is due. Returns the save's step, for followers.
   */
  #afterSave(tracked: Tracked, live: ReadonlyMap<unknown, unknown>, mode: string, results: SaveReply[]): string | undefined {
    const first = results[0] as SaveReply;
    const last = results[results.length - 1] as SaveReply;
    const from = first[2] - 1;
    const contiguous = results.every((r, i) => r[1] === first[1] && r[2] === first[2] + i && !r[6]);
    const before = tracked.synced;
    // The hash is now exactly what memory was when the save began if the save reset it, or made
    // it, or changed it from a state memory held (what changed since then is what was written).
    const fromKnown = mode === 'reset' || first[5] || (before !== undefined && before.epoch === first[1] && before.version === from);
    const inStep = contiguous && fromKnown;
    tracked.synced = inStep ? { epoch: last[1], version: last[2] } : undefined;
    const [, , , logSize, current] = last;
    const pointer = current === '' ? undefined : parsePointer(current);
    const due = pointer === undefined ? live.size >= this.#snapshotMinEntries : logSize > this.#snapshotShare * pointer.entries;
    if (inStep && due) this.#snapshotSoon(tracked);
    return contiguous ? `${first[1]} ${from} ${last[2]}` : undefined;
  }

  /** Writes a snapshot of the cache in the background, after the running operation, unless one is being written. */
  #snapshotSoon(tracked: Tracked): void {
    const { cache } = tracked;
    if (tracked.snapshotting || this.#closed || this.#snapshotMinEntries === Number.POSITIVE_INFINITY) return;
    tracked.snapshotting = true;
    cache.inBackground('snapshot', async (source) => {
      try {
        await this.#writeSnapshot(tracked, source);
      } finally {
        tracked.snapshotting = false;
      }
    });
  }

  /**
   * Writes memory as the cache's snapshot, when memory is exactly a known state of the hash (no
   * unsaved edit: the source offers none otherwise), and makes it current if the hash is still
   * that state or a later one whose changes the log holds.
   */
  async #writeSnapshot(tracked: Tracked, source: MemorySnapshotSource): Promise<void> {
    const { cache, key } = tracked;
    await source(async (snapshot: EntrySnapshot) => {
      const at = tracked.synced;
      if (at === undefined || this.#closed) return 0;
      const version = String(at.version);
      const begun = await this.#call(tracked, 'snapshot in Redis', () => this.#snapshotBegin(key, at.epoch, version));
      if (String(begun) !== 'ok') return 0;
      const id = randomUUID().slice(0, 8);
      const inFlight: Array<Promise<unknown>> = [];
      const { parts, bytes } = await writeSnapshotParts(cache.name, snapshot, id, async (field, part) => {
        const sent = this.#call(tracked, 'snapshot in Redis', () => this.#redis.hset(snapshotKey(key), field, part));
        sent.catch(() => undefined); // awaited below
        inFlight.push(sent);
        if (inFlight.length >= 4) await inFlight.shift();
      });
      await Promise.all(inFlight);
      await this.#call(tracked, 'snapshot in Redis', () =>
        this.#snapshotCommit(key, at.epoch, version, id, String(parts), String(bytes), String(snapshot.size)),
      );
      return bytes;
    });
  }

  /**
   * Writes back what this process holds after Redis lost the cache: its own keys over anything
   * (with tombstones for those it deleted), every other entry only where Redis has nothing
   * (another process's newer copy wins). `dirty`: keys changed here and not saved yet, also
   * its own. Returns the entries written.
   */
  async #recover(tracked: Tracked, live: ReadonlyMap<unknown, unknown>, dirty: ReadonlySet<unknown>): Promise<number> {
    const { key, own } = tracked;
    const created = `r:${randomUUID()}`;
    const calls: Array<() => Promise<unknown>> = [];
    let ownSets: Buffer[] = [];
    let fills: Buffer[] = [];
    let rewritten = 0;
    const flush = (ownDels: Buffer[]) => {
      const a = ownSets;
      const b = fills;
      calls.push(() => this.#recoverBatch(key, created, String(a.length / 2), String(ownDels.length), String(b.length / 2), ...a, ...ownDels, ...b));
      ownSets = [];
      fills = [];
    };
    for (const [k, v] of live) {
      const pair = [encodeKey(k), encodeValue(v)];
      if (own.has(k) || dirty.has(k)) ownSets.push(...pair);
      else fills.push(...pair);
      rewritten++;
      if (ownSets.length + fills.length >= 2 * this.#batch) flush([]);
    }
    const ownDels: Buffer[] = [];
    const deleted = new Set<unknown>(dirty);
    if (!own.all) for (const k of own.keys) deleted.add(k);
    for (const k of own.deleted) deleted.add(k);
    for (const k of deleted) if (!live.has(k)) ownDels.push(encodeKey(k));
    flush(ownDels);
    let epoch = created;
    await this.#call(tracked, 'write back to Redis', async () => {
      for (const call of calls) epoch = String(await call());
    });
    tracked.epoch = epoch;
    tracked.recover = false;
    tracked.synced = undefined; // other processes' copies may have filled the hash
    for (const k of dirty) own.add(k);
    return rewritten;
  }

  /**
   * At exit, when nothing can wait for Redis: writes the unsaved changes (values as they are
   * now, and the deleted keys) to a spill file in the manager's cache directory, crash-safe and
   * CRC-checked as a journal record; the next process that loads the cache from this Redis
   * sends them as a save, then removes the file. @throws what writing the file throws
   */
  #spill(tracked: Tracked, live: ReadonlyMap<unknown, unknown>, changes: ChangeSet<unknown>): void {
    const { cache, key } = tracked;
    const sets: unknown[] = [];
    const deletes: unknown[] = [];
    if (changes.all) for (const [k, v] of live) sets.push(k, v);
    for (const k of changes.keys) {
      if (!live.has(k)) deletes.push(k);
      else if (!changes.all) sets.push(k, live.get(k));
    }
    const place = cache.manager.store.place;
    place.prepareForWrite();
    const file = join(place.path, `${cacheFileName(cache.name, SPILL_EXTENSION)}-${process.pid}-${randomUUID().slice(0, 8)}`);
    const bytes = [encodeJournalHeader({ name: cache.name, baseId: key }), encodeJournalRecord({ sets, deletes, generation: undefined })];
    writeFileAtomicSync(file, (fd) => writeAllSync(fd, bytes), place.fileMode);
    process.stderr.write(`depcache: ${cache.name}: the process ended before ${sets.length / 2 + deletes.length} unsaved changes reached Redis; they are kept in ${file} and sent by the next load of this cache from this Redis\n`);
  }

  /** Sends the spill files other processes left for this cache and Redis, as saves; removes each once sent. */
  async #replaySpills(tracked: Tracked): Promise<void> {
    const { cache, key } = tracked;
    const place = cache.manager.store.place;
    if (!place.checkForRead()) return;
    const prefix = cacheFileName(cache.name, SPILL_EXTENSION);
    for (const name of fs.readdirSync(place.path)) {
      if (!name.startsWith(`${prefix}-`)) continue;
      const path = join(place.path, name);
      const records: JournalRecord[] = [];
      const file = openCacheFileSync(cache.name, path);
      if (file === undefined) continue;
      try {
        if (parseFileSync(cache.name, path, file, journalSteps(file.size, key, (r) => records.push(r))) === undefined) continue; // another Redis's
      } catch (err) {
        if (!(err instanceof FormatError)) throw err;
        cache.manager.reportError(new CorruptCacheFileError(cache.name, path, `spill file not replayed: ${err.message}`));
        continue;
      } finally {
        fs.closeSync(file.handle);
      }
      for (const { sets, deletes } of records) {
        const fields: Buffer[] = [];
        for (let i = 0; i < sets.length; i += 2) fields.push(encodeKey(sets[i]), encodeValue(sets[i + 1]));
        const gone = deletes.map(encodeKey);
        const meta = JSON.stringify({ savedAt: Date.now(), replayed: name });
        for (let at = 0; at < Math.max(fields.length, 1); at += 2 * this.#batch) {
          const pairs = fields.slice(at, at + 2 * this.#batch);
          await this.#call(tracked, `replay ${name} into Redis`, () => this.#save(key, '', 'merge', `e:${randomUUID()}`, meta, String(pairs.length / 2), ...pairs));
        }
        for (let at = 0; at < gone.length; at += this.#batch) {
          const batch = gone.slice(at, at + this.#batch);
          await this.#call(tracked, `replay ${name} into Redis`, () => this.#save(key, '', 'merge', `e:${randomUUID()}`, '', '0', ...batch));
        }
      }
      fs.rmSync(path, { force: true });
    }
  }

  /** Applies another process's save here: only the keys it changed, fetched now. */
  async #follow(tracked: Tracked, detail: SaveDetail | undefined): Promise<void> {
    const { cache, key } = tracked;
    const merge = (read: () => Promise<SavedUpdate | undefined>) => cache.mergeSaved(read);
    if (detail?.fields === undefined) {
      await merge(async () => {
        const whole = await this.#load(tracked);
        return whole === undefined ? undefined : { whole };
      });
      return;
    }
    const fields = unpackFields(detail.fields);
    if (fields.length === 0) return;
    // Memory keeps up with the hash when it held the state this save started from.
    const [epoch, from, to] = detail.step?.split(' ') ?? [];
    const before = tracked.synced;
    const inStep = before !== undefined && before.epoch === epoch && String(before.version) === from;
    tracked.synced = undefined;
    const merged = await merge(async () => {
      const values = await this.#call(tracked, 'read from Redis', () => this.#redis.hmgetBuffer(key, ...fields));
      const record = changedSince(fields.flatMap((field, i) => [field, values[i] ?? null]));
      // Another process saved these keys last: they are no longer this process's own.
      for (let i = 0; i < record.sets.length; i += 2) tracked.own.remove(record.sets[i]);
      for (const k of record.deletes) tracked.own.remove(k);
      return { records: [record] };
    });
    if (merged && inStep) tracked.synced = { epoch: epoch as string, version: Number(to) };
  }

  /** After a reconnect: caches whose saved state Redis lost are written back by their next save. */
  #checkAfterReconnect(): void {
    for (const tracked of this.#tracked.values()) {
      const { cache, key } = tracked;
      if (tracked.epoch === undefined || tracked.epoch.startsWith('d:') || !cache.hasContents) continue;
      this.#call(tracked, 'read from Redis', () => this.#redis.hgetBuffer(key, EPOCH_FIELD))
        .then(async (epoch) => {
          const now = epoch === null ? undefined : epoch.toString('latin1');
          if (now !== undefined && (now === tracked.epoch || !afterLoss(now))) return;
          tracked.recover = true;
          await cache.save();
        })
        .catch((err: unknown) => cache.manager.reportError(err));
    }
  }
}

/**
 * Fields with their values now (`[field, value|null, ...]`: the changes a log names since a
 * snapshot, or those a followed save announced) as sets and deletes.
 * @throws {DecodeError} for a value that does not decode
 */
function changedSince(flat: ReadonlyArray<Buffer | null>): JournalRecord {
  const sets: unknown[] = [];
  const deletes: unknown[] = [];
  try {
    for (let i = 0; i < flat.length; i += 2) {
      const key = decodeKey(flat[i] as Buffer);
      const value = flat[i + 1];
      if (value === null || value === undefined) deletes.push(key);
      else sets.push(key, decodeValue(value));
    }
  } catch (err) {
    throw new DecodeError((err as Error).message);
  }
  return { sets, deletes, generation: undefined };
}

/**
 * Whether an epoch began after Redis lost a cache (a write-back, or a save that found nothing),
 * as the SAVE script tells them: a process that holds an older state writes it back.
 */
function afterLoss(epoch: string): boolean {
  return epoch.startsWith('r:') || epoch.startsWith('m:');
}

/** One save batch's reply, typed. */
function saveReply(reply: unknown[]): SaveReply {
  const [status, epoch, version, logSize, current, made, foreign] = reply;
  return [String(status), String(epoch), Number(version ?? 0), Number(logSize ?? -1), String(current ?? ''), Number(made) === 1, Number(foreign) === 1];
}

/** A failure to decode what Redis returned (damaged data), as opposed to a failure to get it. */
class DecodeError extends Error {}

/**
 * A Lua script over a cache's keys (its hash, log and snapshot), run with EVALSHA (EVAL once
 * when the server does not have it); `buffers`: replies as Buffers (binary fields), not strings.
 */
function script(redis: Redis, name: string, lua: string, buffers = false): ScriptRunner {
  const client = redis as unknown as Record<string, unknown> & { defineCommand(name: string, def: { numberOfKeys: number; lua: string }): void };
  if (typeof client[name] !== 'function') client.defineCommand(name, { numberOfKeys: 3, lua });
  const method = buffers ? `${name}Buffer` : name;
  return (key, ...args) =>
    (client[method] as (...a: Array<string | Buffer>) => Promise<unknown>).call(client, key, logKey(key), snapshotKey(key), ...args);
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
