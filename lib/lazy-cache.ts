import type { CacheOptions } from './cache';
import { openCache } from './cache-options';
import { declareOptions } from './options';
import { NonPersistentCache } from './non-persistent-cache';

/**
 * A memory-only cache built on first access with a synchronous builder (CacheMan's
 * LazyBuildNonPersistentCache). Invalidating it drops the contents; the next access rebuilds.
 *
 * @example
 * const squares = new LazyCache('squares', { builder: () => [[2, 4], [3, 9]] });
 * squares.get(3); // 9: built right here
 */
export class LazyCache<K = unknown, V = unknown> extends NonPersistentCache<K, V> {
  /** Constructs the cache and runs `loadOrBuild()`. */
  static override open<K = unknown, V = unknown>(
    name: string,
    options?: CacheOptions<K, V>,
  ): Promise<LazyCache<K, V>> {
    return openCache(this, name, options, () => new this<K, V>(name, options));
  }

  constructor(name: string, options: CacheOptions<K, V> = {}) {
    super(name, options);
    // With no loader, load() and invalidate() leave no contents, so the next access rebuilds.
    if (options.loader === undefined && options.store === undefined) this.loader = null;
  }

  override has(key: K): boolean {
    if (!this.hasContents) this.buildSync();
    return super.has(key);
  }

  override get size(): number {
    if (!this.hasContents) this.buildSync();
    return super.size;
  }

  protected override contentsMissing(): boolean {
    this.buildSync();
    return true;
  }
}

declareOptions(LazyCache, []);
