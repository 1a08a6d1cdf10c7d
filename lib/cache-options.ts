/*
 * The options every cache class takes, checked at construction (names by checkOptionsObject,
 * types here), and the body of every class's `open()`.
 */
import type { AnyCacheMap, CacheOptions } from './cache';
import type { Contents } from './contents';
import { CacheConflictError } from './errors';
import { CacheManager, getCacheManager } from './manager';
import { checkBoolean, checkHook, checkOptionsObject, describeValue } from './options';
import type { CacheStore } from './store/cache-store';

export const HOOKS = ['loader', 'saver', 'deleter', 'builder', 'validator', 'preProcessor', 'postProcessor'] as const;

/** The types of the options every cache takes; `isCache` tells a cache among the dependents. */
export function checkCacheOptions(name: string, options: Readonly<Record<string, unknown>>, isCache: (value: unknown) => boolean): void {
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
      if (typeof d !== 'string' && !isCache(d)) {
        throw new TypeError(`${name}: dependents: expected cache names or caches, got ${describeValue(d)}`);
      }
    }
  }
}

/** The `store` option, checked: an object with the methods and capabilities of a CacheStore. */
export function checkStore(name: string, options: CacheOptions<unknown, unknown>): CacheStore | null {
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
