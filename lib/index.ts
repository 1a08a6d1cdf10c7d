// The package's only entry point: every public name is listed here, nothing else is public.
export { CacheManager, getCacheManager } from './manager';
export type {
  CacheClass,
  CacheManagerOptions,
  CacheManagerEvents,
  CustomCacheOptions,
  ManagerBus,
} from './manager';
export type { ManagerStats, ManagedCacheStats } from './manager-stats';
export type { Manifest } from './store/manifest';
export type { GraphFormat } from './graph-render';
export type { ProgressOperation } from './progress';
export { CacheMap } from './cache';
export type {
  AnyCacheMap,
  CacheHooks,
  CacheOptions,
  CacheStats,
  SetOptions,
  Loader,
  Saver,
  Deleter,
  Builder,
  Validator,
  Processor,
} from './cache';
export type { Contents } from './contents';
export { PersistentCache } from './persistent-cache';
export type { PersistentCacheOptions } from './persistent-cache';
export { NonPersistentCache } from './non-persistent-cache';
export { LazyCache } from './lazy-cache';
export { AutoSyncCache } from './auto-sync-cache';
export type { CsvOptions, CsvCacheOptions, AutoSyncCsvCacheOptions } from './text-caches';
export type { RowBuilder, RowReader } from './store/csv-format';
export type { AutoSyncCacheOptions } from './auto-sync-cache';
export { EditWindow, DEFAULT_TIME_CHECKS } from './edit-window';
export type { EditWindowOptions, TimeCheck } from './edit-window';
export type { RedisClient, RedisStoreOptions } from './redis/redis-store';
export type { InvalidationBus, BusOptions, BusMessage, BusOperation } from './redis/bus';
export { BusGapError, RedisDataLostError, RedisUnavailableError } from './redis/errors';
export type { Memoized, MemoizeOptions, MemoizeClearOptions } from './memoize/memoize';
export type { AsyncProxy, PoolEvents, PoolLeak, PoolOptions, PoolStats, PoolUseOptions } from './pool/pool';
export type { Percentiles } from './pool/samples';
export type { CorruptFilePolicy, FileStoreOptions } from './store/file-store';
export type {
  CacheStore,
  StoreBatch,
  StoreCapabilities,
  StoreSave,
  StoreSyncSave,
  StoredContents,
  StoredEntry,
} from './store/cache-store';
export type { CacheFileMeta } from './store/file-format';
export {
  DepcacheError,
  CacheNotFoundError,
  CacheContentsMissingError,
  InvalidCacheNameError,
  CorruptCacheFileError,
  CacheSerializationError,
  CacheHookError,
  CacheIOError,
  ManagerClosedError,
  CacheConflictError,
  ReentrantCallError,
  UnsafeDirectoryError,
  UnkeyableArgumentsError,
  PoolTimeoutError,
  PoolClosedError,
  PoolCreateError,
  PoolReleaseError,
  PoolFullError,
} from './errors';
export type { DepcacheErrorCode, HookName } from './errors';

// The optional parts (text caches, memoize, Redis, the pool) are loaded the first time a program
// reads one of these names, so `require('depcache')` costs only the core and a program that never
// uses Redis never loads its store. Each getter is the plain `return lazy.X` that Node's CommonJS
// export detection reads, so `import { RedisStore } from 'depcache'` works from ESM too (which
// reads every name at import, and so loads them all).
/* eslint-disable @typescript-eslint/no-require-imports */
type TextCaches = typeof import('./text-caches');
type Memoize = typeof import('./memoize/memoize');
type Redis = typeof import('./redis/redis-store');
type Bus = typeof import('./redis/bus');
type Pools = typeof import('./pool/pool');
const lazy = {
  get CsvCache(): TextCaches['CsvCache'] {
    return (require('./text-caches') as TextCaches).CsvCache;
  },
  get AutoSyncCsvCache(): TextCaches['AutoSyncCsvCache'] {
    return (require('./text-caches') as TextCaches).AutoSyncCsvCache;
  },
  get JsonCache(): TextCaches['JsonCache'] {
    return (require('./text-caches') as TextCaches).JsonCache;
  },
  get AutoSyncJsonCache(): TextCaches['AutoSyncJsonCache'] {
    return (require('./text-caches') as TextCaches).AutoSyncJsonCache;
  },
  get memoize(): Memoize['memoize'] {
    return (require('./memoize/memoize') as Memoize).memoize;
  },
  get memoized(): Memoize['memoized'] {
    return (require('./memoize/memoize') as Memoize).memoized;
  },
  get RedisStore(): Redis['RedisStore'] {
    return (require('./redis/redis-store') as Redis).RedisStore;
  },
  get connectBus(): Bus['connectBus'] {
    return (require('./redis/bus') as Bus).connectBus;
  },
  get Pool(): Pools['Pool'] {
    return (require('./pool/pool') as Pools).Pool;
  },
  get PoolLease(): Pools['PoolLease'] {
    return (require('./pool/pool') as Pools).PoolLease;
  },
  get PoolScope(): Pools['PoolScope'] {
    return (require('./pool/pool') as Pools).PoolScope;
  },
};
/* eslint-enable @typescript-eslint/no-require-imports */
Object.defineProperty(exports, 'CsvCache', { enumerable: true, get: function () { return lazy.CsvCache; } });
Object.defineProperty(exports, 'AutoSyncCsvCache', { enumerable: true, get: function () { return lazy.AutoSyncCsvCache; } });
Object.defineProperty(exports, 'JsonCache', { enumerable: true, get: function () { return lazy.JsonCache; } });
Object.defineProperty(exports, 'AutoSyncJsonCache', { enumerable: true, get: function () { return lazy.AutoSyncJsonCache; } });
Object.defineProperty(exports, 'memoize', { enumerable: true, get: function () { return lazy.memoize; } });
Object.defineProperty(exports, 'memoized', { enumerable: true, get: function () { return lazy.memoized; } });
Object.defineProperty(exports, 'RedisStore', { enumerable: true, get: function () { return lazy.RedisStore; } });
Object.defineProperty(exports, 'connectBus', { enumerable: true, get: function () { return lazy.connectBus; } });
Object.defineProperty(exports, 'Pool', { enumerable: true, get: function () { return lazy.Pool; } });
Object.defineProperty(exports, 'PoolLease', { enumerable: true, get: function () { return lazy.PoolLease; } });
Object.defineProperty(exports, 'PoolScope', { enumerable: true, get: function () { return lazy.PoolScope; } });

export declare const CsvCache: TextCaches['CsvCache'];
export type CsvCache<K = unknown, V = unknown> = import('./text-caches').CsvCache<K, V>;
export declare const AutoSyncCsvCache: TextCaches['AutoSyncCsvCache'];
export type AutoSyncCsvCache<K = unknown, V = unknown> = import('./text-caches').AutoSyncCsvCache<K, V>;
export declare const JsonCache: TextCaches['JsonCache'];
export type JsonCache<K = unknown, V = unknown> = import('./text-caches').JsonCache<K, V>;
export declare const AutoSyncJsonCache: TextCaches['AutoSyncJsonCache'];
export type AutoSyncJsonCache<K = unknown, V = unknown> = import('./text-caches').AutoSyncJsonCache<K, V>;
export declare const memoize: Memoize['memoize'];
export declare const memoized: Memoize['memoized'];
export declare const RedisStore: Redis['RedisStore'];
export type RedisStore = import('./redis/redis-store').RedisStore;
export declare const connectBus: Bus['connectBus'];
export declare const Pool: Pools['Pool'];
export type Pool<T> = import('./pool/pool').Pool<T>;
export declare const PoolLease: Pools['PoolLease'];
export type PoolLease<T> = import('./pool/pool').PoolLease<T>;
export declare const PoolScope: Pools['PoolScope'];
export type PoolScope<T> = import('./pool/pool').PoolScope<T>;
