// The cache classes the manager builds by itself (registerCache, registerCustomCache,
// retrieveCache), registered here by their own modules as they load. The manager reads them from
// here instead of importing them: they import the manager (their default one), so an import the
// other way would be a circle, where what each module sees of the other depends on which was
// required first.
import type { AutoSyncCache } from './auto-sync-cache';
import type { CacheMap } from './cache';
import type { NonPersistentCache } from './non-persistent-cache';
import type { PersistentCache } from './persistent-cache';

/** The classes, by the name each registers under. */
export interface CacheKinds {
  /** The base class, for "is this a cache" checks. */
  readonly CacheMap: typeof CacheMap;
  readonly NonPersistentCache: typeof NonPersistentCache;
  readonly PersistentCache: typeof PersistentCache;
  readonly AutoSyncCache: typeof AutoSyncCache;
}

const kinds: { -readonly [N in keyof CacheKinds]?: CacheKinds[N] } = {};

/** Called once by the module that defines `cls`, as it loads. */
export function registerCacheKind<N extends keyof CacheKinds>(name: N, cls: CacheKinds[N]): void {
  kinds[name] = cls;
}

/** A class was asked for before its module loaded: a wiring fault of ours, never a user's. */
export class CacheKindNotLoadedError extends Error {
  override name = 'CacheKindNotLoadedError';
  constructor(readonly kind: string) {
    super(`${kind} is not loaded: import the package (lib/index), not lib/manager alone`);
  }
}

/**
 * The class registered as `name`.
 * @throws {CacheKindNotLoadedError} when its module was never loaded (only a program that
 *   imports the manager's module alone, not the package, can get there)
 */
export function cacheKind<N extends keyof CacheKinds>(name: N): CacheKinds[N] {
  const cls = kinds[name];
  if (cls === undefined) throw new CacheKindNotLoadedError(name);
  return cls as CacheKinds[N];
}
