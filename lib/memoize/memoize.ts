import { createHash, randomUUID } from 'node:crypto';
import * as v8 from 'node:v8';
import { AutoSyncCache } from '../auto-sync-cache';
import type { CacheMap } from '../cache';
import { CacheSerializationError, UnkeyableArgumentsError } from '../errors';
import { generationChangeCount } from '../cache-core';
import { assertCacheName } from '../store/file-name';
import { type CacheManager, getCacheManager } from '../manager';
import { NonPersistentCache } from '../non-persistent-cache';
import { PersistentCache } from '../persistent-cache';
import { encodeArgs, encodeThis } from './arg-key';
import { coarseNow } from '../coarse-clock';

/** Options of {@link memoize} and {@link memoized}. */
export interface MemoizeOptions {
  /** The manager whose cache holds the results. @default getCacheManager() */
  readonly manager?: CacheManager;
  /** The cache that holds the results; many functions share it, as percache shares one file. @default 'memoize' */
  readonly cacheName?: string;
  /** Computes the key from the arguments (and `this`); its result is encoded like arguments. @default the arguments */
  readonly key?: (...args: never[]) => unknown;
  /** The function's name in keys. @default fn.name */
  readonly name?: string;
  /** Saves after every new result, rather than leaving it to autosync, close or exit. @default false */
  readonly livesync?: boolean;
  /** Caches whose invalidation, rebuild or deletion drops this function's results. @default [] */
  readonly dependsOn?: readonly string[];
  /** What arguments that cannot be keyed do: throw, or call the function uncached. @default 'throw' */
  readonly onUnkeyable?: 'throw' | 'call';
  /**
   * A result older than this (ms since it was computed) is computed again. The age is kept with
   * the result (as the entry's expiry time), so it holds across restarts. @default Infinity
   */
  readonly maxAgeMs?: number;
}

/** Options of `memoized.clear()`. */
export interface MemoizeClearOptions {
  /** Drop only results not read or written within this many ms (precise to a minute). @default drop all */
  readonly maxAgeMs?: number;
}

/** A memoized function: `fn`'s signature, plus its cache controls. */
export type Memoized<F extends (...args: never[]) => unknown> = F & {
  /** Drops this function's results (only those unused for `maxAgeMs`, when given); returns how many. */
  clear(options?: MemoizeClearOptions): number;
  /** `name#fingerprint`: what keys of this function start with. */
  readonly memoizeId: string;
  /** Stops listening for `dependsOn` invalidations. */
  dispose(): void;
};

/**
 * [result, last used (ms since the epoch), 1 when the result came from a Promise, the
 * generations of the `dependsOn` caches it was computed over ('' without dependsOn; absent in
 * entries saved by older versions)].
 */
type Entry = [unknown, number, 0 | 1, string?];

// Functions memoized per manager and results cache, by key prefix: a second, different function
// object under the same prefix (same name and source, another closure) would share results.
const claims = new WeakMap<CacheManager, Map<string, unknown>>();
// Stands for a dependsOn cache not registered here: results computed meanwhile hold in this
// process only, until the cache is registered (and its generation known).
const PROCESS_TOKEN = randomUUID();

// A hit refreshes the stored "last used" time at most this often, so hits are not edits.
const TOUCH_MS = 60_000;

const KEY_SEPARATOR = '\u0000';

/**
 * Memoizes `fn` with results that survive process restarts (percache for TypeScript). Keys hold
 * the function's name, a fingerprint of its source (changed code never returns stale results)
 * and its arguments, typed (`1`, `'1'`, `1n`, `[1]` and `{a: 1}` differ). A sync `fn` stays
 * sync: the first call loads the cache file synchronously. An async `fn` returns a Promise;
 * concurrent calls with equal arguments share one computation; rejections are not cached.
 *
 * @throws {UnkeyableArgumentsError} EUNKEYABLE for arguments that cannot be keyed (functions,
 *   symbols, cycles), unless `onUnkeyable: 'call'`
 * @example
 * const slowSquare = memoize((n: number) => { sleep(1000); return n * n; });
 * slowSquare(4); // slow the first time ever, instant afterwards, in this process and the next
 */
export function memoize<F extends (...args: never[]) => unknown>(fn: F, options: MemoizeOptions = {}): Memoized<F> {
  return createMemoized(fn, options, false);
}

/**
 * A standard (TC39) method decorator memoizing a class method through {@link memoize}. `this`
 * is part of the key (its class and own enumerable properties), unless `key` says otherwise.
 *
 * @example
 * class Prices { @memoized({ dependsOn: ['rates'] }) convert(amount: number) { ... } }
 */
export function memoized(options: MemoizeOptions = {}) {
  return function decorate<This, Args extends unknown[], R>(
    method: (this: This, ...args: Args) => R,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => R>,
  ): (this: This, ...args: Args) => R {
    const name = options.name ?? String(context.name);
    let memo: ((this: This, ...args: Args) => R) | undefined;
    return function (this: This, ...args: Args): R {
      // Created on first call, so the default manager is resolved at run time, not import time.
      memo ??= createMemoized(method as (...a: never[]) => unknown, { ...options, name }, true) as unknown as (
        this: This,
        ...args: Args
      ) => R;
      return memo.apply(this, args);
    };
  };
}

function createMemoized<F extends (...args: never[]) => unknown>(
  fn: F,
  options: MemoizeOptions,
  includeThis: boolean,
): Memoized<F> {
  if (typeof fn !== 'function') throw new TypeError(`memoize: expected a function, got ${typeof fn}`);
  const {
    manager = getCacheManager(),
    cacheName = 'memoize',
    key: keyFn,
    name = fn.name,
    livesync = false,
    dependsOn = [],
    onUnkeyable = 'throw',
    maxAgeMs = Number.POSITIVE_INFINITY,
  } = options;
  if (!(typeof maxAgeMs === 'number' && maxAgeMs > 0)) {
    throw new TypeError(`memoize: maxAgeMs: expected a number of ms > 0 (or Infinity), got ${String(maxAgeMs)} (${typeof maxAgeMs})`);
  }
  const aging = maxAgeMs !== Number.POSITIVE_INFINITY;
  if (keyFn !== undefined && typeof keyFn !== 'function') {
    throw new TypeError(`memoize: key: expected a function, got ${typeof keyFn}`);
  }
  if (onUnkeyable !== 'throw' && onUnkeyable !== 'call') {
    throw new TypeError(`memoize: onUnkeyable: expected 'throw' or 'call', got ${String(onUnkeyable)}`);
  }
  const id = `${name}#${createHash('sha256').update(fn.toString()).digest('hex').slice(0, 16)}`;
  const prefix = id + KEY_SEPARATOR;
  let claimed = claims.get(manager);
  if (claimed === undefined) claims.set(manager, (claimed = new Map()));
  const claimKey = `${cacheName}${KEY_SEPARATOR}${id}`;
  const holder = claimed.get(claimKey);
  if (holder !== undefined && holder !== fn) {
    throw new TypeError(
      `memoize: another function named ${JSON.stringify(name)} with the same source is already memoized in cache ` +
        `${JSON.stringify(cacheName)} of manager ${manager.name}: two closures over different values would share results. ` +
        `Pass a distinct name option (memoize(fn, { name: 'convertToEur' })), or dispose() the other first`,
    );
  }
  claimed.set(claimKey, fn);
  const dependencies = [...new Set(dependsOn)];
  for (const dependency of dependencies) assertCacheName(dependency);
  if (dependencies.length > 0) manager.recordInputs(cacheName, dependencies);
  const inflight = new Map<string, Promise<unknown>>();
  let cache: CacheMap<string, Entry> | undefined;
  // This function's entries by argument key alone. A hit then hashes a short key, not the
  // concatenated prefix + arguments, which had to be flattened and hashed anew on every call
  // (hits took 590 ns with that, 260 ns with this). The index is trusted only while the cache
  // it mirrors is the same object at the same contentsVersion; any other change (a load, a
  // delete, another function's result) empties it, and hits refill it from the cache.
  const index = new Map<string, Entry>();
  let indexOf: CacheMap<string, Entry> | undefined;
  let indexVersion = -1;

  let registryVersion = -1; // the manager's, when `cache` was looked up

  // The results cache with contents: the registered one, even if it was replaced since.
  const contents = (): CacheMap<string, Entry> => {
    if (cache === undefined || !cache.hasContents || manager.registryVersion !== registryVersion) {
      cache = openSync(manager, cacheName);
      registryVersion = manager.registryVersion;
    }
    return cache;
  };

  // The argument key (without the prefix), or undefined when the arguments cannot be keyed.
  const keyOf = keyFn
    ? (self: unknown, args: unknown[]) => encodeArgs([(keyFn as (...a: unknown[]) => unknown).apply(self, args)])
    : includeThis
      ? (self: unknown, args: unknown[]) => {
          const selfKey = encodeThis(self);
          if (typeof selfKey !== 'string') return selfKey;
          const argsKey = encodeArgs(args);
          return typeof argsKey === 'string' ? `${selfKey}|${argsKey}` : argsKey;
        }
      : (_self: unknown, args: unknown[]) => encodeArgs(args);

  // Writes an entry, and keeps the index true when nothing else changed the cache meanwhile.
  const put = (c: CacheMap<string, Entry>, argKey: string, entry: Entry, ttlMs?: number): void => {
    const current = c === indexOf && c.contentsVersion === indexVersion;
    if (ttlMs === undefined) c.set(prefix + argKey, entry);
    else c.set(prefix + argKey, entry, { ttlMs });
    if (current) {
      index.set(argKey, entry);
      indexVersion = c.contentsVersion;
    }
  };

  // The generations of the dependsOn caches now, recomputed only when some cache's generation
  // or the registry changed: a hit pays two compares for it.
  let inputs = '';
  let inputsAt = -1;
  let inputsRegistry = -1;
  const currentInputs = (): string => {
    if (dependencies.length === 0) return '';
    const at = generationChangeCount();
    if (at !== inputsAt || manager.registryVersion !== inputsRegistry) {
      inputsAt = at;
      inputsRegistry = manager.registryVersion;
      inputs = dependencies
        .map((d) => {
          if (!manager.cacheRegistered(d)) return `unregistered:${PROCESS_TOKEN}`;
          const input = manager.getCache(d);
          return input.hasContents ? input.generation : 'none';
        })
        .join(KEY_SEPARATOR);
    }
    return inputs;
  };

  const store = (argKey: string, value: unknown, kind: 0 | 1, over: string): void => {
    const c = contents();
    // A result the store cannot write would make every later save of the shared cache fail,
    // losing every function's results: refuse it here, at the call that made it.
    if (c instanceof PersistentCache) {
      try {
        v8.serialize(value);
      } catch (err) {
        throw new CacheSerializationError(cacheName, `${name || 'anonymous'}(…) result`, true, { cause: err });
      }
    }
    put(c, argKey, dependencies.length === 0 ? [value, Date.now(), kind] : [value, Date.now(), kind, over], aging ? maxAgeMs : undefined);
    if (livesync) c.save().catch((err: unknown) => manager.reportError(err));
  };

  const wrapper = function (this: unknown, ...args: unknown[]): unknown {
    const argKey = keyOf(this, args);
    if (typeof argKey !== 'string') {
      if (onUnkeyable === 'call') return fn.apply(this, args as never[]);
      throw new UnkeyableArgumentsError(name, cacheName, argKey.reason);
    }
    const c = contents();
    let hit: Entry | undefined;
    // With maxAgeMs, every hit asks the cache, which knows each result's expiry time.
    if (aging) hit = c.get(prefix + argKey);
    else if (c === indexOf && c.contentsVersion === indexVersion) hit = index.get(argKey);
    else {
      index.clear();
      indexOf = c;
      indexVersion = c.contentsVersion;
    }
    if (hit === undefined && !aging) {
      hit = c.get(prefix + argKey);
      if (hit !== undefined) index.set(argKey, hit);
    }
    const over = currentInputs();
    // A result computed over inputs that were rebuilt since (here, in another process, or by
    // the CLI) is stale: compute it again.
    if (hit !== undefined && dependencies.length > 0 && hit[3] !== over) hit = undefined;
    if (hit !== undefined) {
      const now = coarseNow();
      if (now - hit[1] > TOUCH_MS) {
        hit[1] = now;
        // The touch keeps the result's expiry: its age counts from when it was computed.
        const expiresAt = aging ? c.expiresAt(prefix + argKey) : undefined;
        put(c, argKey, hit, expiresAt === undefined ? undefined : Math.max(1, expiresAt - now));
      }
      return hit[2] === 1 ? Promise.resolve(hit[0]) : hit[0];
    }
    const pending = inflight.get(argKey);
    if (pending !== undefined) return pending;
    const result = fn.apply(this, args as never[]);
    if (!isThenable(result)) {
      store(argKey, result, 0, over);
      return result;
    }
    const shared = Promise.resolve(result).then(
      (value) => {
        inflight.delete(argKey);
        store(argKey, value, 1, over);
        return value;
      },
      (err: unknown) => {
        inflight.delete(argKey); // rejections are not cached
        throw err;
      },
    );
    inflight.set(argKey, shared);
    return shared;
  };

  const clear = (clearOptions: MemoizeClearOptions = {}): number => {
    const { maxAgeMs } = clearOptions;
    if (maxAgeMs !== undefined && !(typeof maxAgeMs === 'number' && maxAgeMs >= 0)) {
      throw new TypeError(`clear: maxAgeMs: expected a non-negative number, got ${String(maxAgeMs)} (${typeof maxAgeMs})`);
    }
    const c = contents();
    const cutoff = maxAgeMs === undefined ? Number.POSITIVE_INFINITY : Date.now() - maxAgeMs;
    const doomed: string[] = [];
    for (const [key, entry] of c) if (key.startsWith(prefix) && entry[1] < cutoff) doomed.push(key);
    for (const key of doomed) c.delete(key);
    return doomed.length;
  };

  const onChange = (event: { cache: string }): void => {
    if (dependencies.includes(event.cache)) clear();
  };
  if (dependencies.length > 0) {
    manager.on('invalidate', onChange);
    manager.on('build', onChange);
    manager.on('delete', onChange);
  }
  const dispose = (): void => {
    if (claimed?.get(claimKey) === fn) claimed.delete(claimKey);
    manager.off('invalidate', onChange);
    manager.off('build', onChange);
    manager.off('delete', onChange);
  };

  Object.defineProperty(wrapper, 'name', { value: fn.name, configurable: true });
  return Object.assign(wrapper, { clear, dispose, memoizeId: id }) as unknown as Memoized<F>;
}

/** The results cache, with contents, loaded synchronously on first use. */
function openSync(manager: CacheManager, cacheName: string): CacheMap<string, Entry> {
  const cache = (
    manager.cacheRegistered(cacheName)
      ? manager.getCache(cacheName)
      : new AutoSyncCache<string, Entry>(cacheName, { manager })
  ) as CacheMap<string, Entry>;
  if (cache.hasContents) return cache;
  if (cache instanceof PersistentCache && cache.hasDefaultLoader) cache.loadSync();
  else if (cache.loader !== null && !(cache instanceof NonPersistentCache)) {
    throw new TypeError(
      `${cacheName}: memoize needs the cache loaded; it has a custom loader, so await manager.reloadOrRebuildCache(${JSON.stringify(cacheName)}) before the first call`,
    );
  }
  if (!cache.hasContents) cache.adoptContents(new Map());
  return cache;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
