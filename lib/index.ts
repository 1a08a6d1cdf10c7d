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
export { CsvCache, AutoSyncCsvCache, JsonCache, AutoSyncJsonCache } from './text-caches';
export type { CsvOptions, CsvCacheOptions, AutoSyncCsvCacheOptions } from './text-caches';
export type { RowBuilder, RowReader } from './store/csv-format';
export type { AutoSyncCacheOptions } from './auto-sync-cache';
export { EditWindow, DEFAULT_TIME_CHECKS } from './edit-window';
export type { EditWindowOptions, TimeCheck } from './edit-window';
export { memoize, memoized } from './memoize/memoize';
export { RedisStore } from './redis/redis-store';
export type { RedisClient, RedisStoreOptions } from './redis/redis-store';
export { connectBus } from './redis/bus';
export type { InvalidationBus, BusOptions, BusMessage, BusOperation } from './redis/bus';
export { BusGapError, RedisDataLostError, RedisUnavailableError } from './redis/errors';
export type { Memoized, MemoizeOptions, MemoizeClearOptions } from './memoize/memoize';
export { Pool, PoolLease, PoolScope } from './pool/pool';
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
