import { CacheMap, type CacheOptions } from './cache';
import { openCache } from './cache-options';
import { registerCacheKind } from './cache-kinds';
import { declareOptions } from './options';

/**
 * A cache that lives in memory only (CacheMan's NonPersistentCache): loading gives an empty map,
 * saving and deleting do nothing unless you give it hooks.
 */
export class NonPersistentCache<K = unknown, V = unknown> extends CacheMap<K, V> {
  /** Constructs the cache and runs `loadOrBuild()`. */
  static override open<K = unknown, V = unknown>(
    name: string,
    options?: CacheOptions<K, V>,
  ): Promise<NonPersistentCache<K, V>> {
    return openCache(this, name, options, () => new this<K, V>(name, options));
  }

  constructor(name: string, options: CacheOptions<K, V> = {}) {
    super(name, options);
    if (options.loader === undefined && options.store === undefined) this.loader = () => new Map<K, V>();
  }
}

declareOptions(NonPersistentCache, []);
registerCacheKind('CacheMap', CacheMap);
registerCacheKind('NonPersistentCache', NonPersistentCache);
