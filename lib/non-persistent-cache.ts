import { CacheMap, type CacheOptions } from './cache';

/**
 * A cache that lives in memory only (CacheMan's NonPersistentCache): loading gives an empty map,
 * saving and deleting do nothing unless you give it hooks.
 */
export class NonPersistentCache<K = unknown, V = unknown> extends CacheMap<K, V> {
  constructor(name: string, options: CacheOptions<K, V> = {}) {
    super(name, options);
    if (options.loader === undefined) this.loader = () => new Map<K, V>();
  }
}
