/**
 * Machine-readable codes carried by every {@link DepcacheError}. Tests and callers branch on these,
 * never on message text.
 */
export type DepcacheErrorCode =
  | 'ECACHE_NOT_FOUND'
  | 'ECONTENTS_MISSING'
  | 'EINVALID_NAME'
  | 'ECORRUPT'
  | 'EFORMAT_VERSION'
  | 'ETORN'
  | 'ESERIALIZE'
  | 'EHOOK'
  | 'EIO'
  | 'ECLOSED'
  | 'EALREADY_REGISTERED'
  | 'EREENTRANT'
  | 'EUNSAFE_DIRECTORY'
  | 'EUNKEYABLE'
  | 'EPOOL_TIMEOUT'
  | 'EPOOL_CLOSED'
  | 'EPOOL_CREATE'
  | 'EPOOL_RELEASE'
  | 'EPOOL_FULL'
  | 'EREDIS'
  | 'EREDIS_LOST'
  | 'EBUS_GAP'
  | 'EEXIT';

/** Which user hook failed, as named in a {@link CacheHookError}. */
export type HookName =
  | 'loader'
  | 'saver'
  | 'deleter'
  | 'builder'
  | 'validator'
  | 'preProcessor'
  | 'postProcessor';

/** Base class of every operational failure depcache reports. The original error is in `cause`. */
export class DepcacheError extends Error {
  override name = 'DepcacheError';
  constructor(
    readonly code: DepcacheErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** `manager.getCache(name)` found no cache registered under that name. */
export class CacheNotFoundError extends DepcacheError {
  override name = 'CacheNotFoundError';
  constructor(readonly cacheName: string) {
    super('ECACHE_NOT_FOUND', `${cacheName}: no cache registered under this name`);
  }
}

/** A read or write reached a cache that has no contents (nothing loaded or built yet). */
export class CacheContentsMissingError extends DepcacheError {
  override name = 'CacheContentsMissingError';
  constructor(readonly cacheName: string) {
    super(
      'ECONTENTS_MISSING',
      `${cacheName}: the cache has no contents (nothing was loaded or built); call loadOrBuild() first`,
    );
  }
}

/** A cache name that cannot be stored: empty, not a string, or longer than 255 characters. */
export class InvalidCacheNameError extends DepcacheError {
  override name = 'InvalidCacheNameError';
  constructor(
    readonly cacheName: unknown,
    reason: string,
  ) {
    super('EINVALID_NAME', `invalid cache name ${describeName(cacheName)}: ${reason}`);
  }
}

/**
 * A saved cache file failed its checks (magic, CRC, length, trailer) or was written by an unknown
 * format version (`code === 'EFORMAT_VERSION'`; such files are never quarantined). `ETORN`
 * reports the last journal record cut short by a crash: it is dropped, the rest loads.
 */
export class CorruptCacheFileError extends DepcacheError {
  override name = 'CorruptCacheFileError';
  constructor(
    readonly cacheName: string,
    readonly path: string,
    reason: string,
    options?: {
      code?: 'ECORRUPT' | 'EFORMAT_VERSION' | 'ETORN';
      quarantinedTo?: string | undefined;
      cause?: unknown;
    },
  ) {
    const moved = options?.quarantinedTo ? `; moved aside to ${options.quarantinedTo}` : '';
    super(options?.code ?? 'ECORRUPT', `${cacheName}: ${reason} (${path})${moved}`, options);
    this.quarantinedTo = options?.quarantinedTo;
  }
  /** Where the bad file was moved, when it was moved aside. */
  readonly quarantinedTo: string | undefined;
}

/** A key or value could not be serialized (a function, a symbol, ...). The old saved file is intact. */
export class CacheSerializationError extends DepcacheError {
  override name = 'CacheSerializationError';
  constructor(
    readonly cacheName: string,
    readonly key: unknown,
    readonly hasKey: boolean,
    options?: { cause?: unknown },
  ) {
    const where = hasKey ? ` at key ${describeKey(key)}` : '';
    super('ESERIALIZE', `${cacheName}: cannot serialize the entry${where}`, options);
  }
}

/** A user hook (loader, saver, builder, ...) threw or rejected; the cache was left unchanged. */
export class CacheHookError extends DepcacheError {
  override name = 'CacheHookError';
  constructor(
    readonly cacheName: string,
    readonly hook: HookName,
    cause: unknown,
  ) {
    super('EHOOK', `${cacheName}: the ${hook} failed: ${errorMessage(cause)}`, { cause });
  }
}

/**
 * Reading, writing or removing a cache file failed at the file-system level, or the path is not
 * a regular file. `systemCode` is the operating system's code when there is one (`ENOSPC` for a
 * full disk, `EACCES`, ...).
 */
export class CacheIOError extends DepcacheError {
  override name = 'CacheIOError';
  /** The operating system's error code (`ENOSPC`, `EROFS`, `EACCES`, ...), when there is one. */
  readonly systemCode: string | undefined;
  constructor(
    readonly cacheName: string,
    readonly path: string,
    action: string,
    cause: unknown,
  ) {
    super('EIO', `${cacheName}: ${action} failed (${path}): ${errorMessage(cause)}`, { cause });
    const code = (cause as { code?: unknown } | null)?.code;
    this.systemCode = typeof code === 'string' ? code : undefined;
  }
}

/**
 * The manager was closed; it accepts no new work, and its caches accept no writes (they could
 * never be saved). Reads keep working. `cacheName` is set when a cache's write was refused.
 */
export class ManagerClosedError extends DepcacheError {
  override name = 'ManagerClosedError';
  constructor(
    readonly managerName: string,
    readonly cacheName?: string,
  ) {
    super(
      'ECLOSED',
      cacheName === undefined
        ? `${managerName}: the cache manager is closed`
        : `${cacheName}: cannot write: its manager ${managerName} is closed, so the write could never be saved`,
    );
  }
}

/**
 * A cache of this name is already registered with the manager: a second object for it would
 * split its state, so construction refuses, and `open()` refuses when the classes differ.
 */
export class CacheConflictError extends DepcacheError {
  override name = 'CacheConflictError';
  constructor(
    readonly cacheName: string,
    readonly managerName: string,
    readonly registeredKind: string,
    wantedKind: string,
  ) {
    const what = registeredKind === wantedKind ? `a ${registeredKind}` : `a ${registeredKind}, not a ${wantedKind}`;
    super(
      'EALREADY_REGISTERED',
      `${cacheName}: already registered with manager ${managerName} as ${what}. ` +
        `Get that cache with ${registeredKind}.open(${JSON.stringify(cacheName)}) or manager.getCache(${JSON.stringify(cacheName)}), ` +
        `or replace it: await manager.deregisterCache(${JSON.stringify(cacheName)}) first`,
    );
  }
}

/**
 * A hook called back into the queue of a cache whose own operation is running it (a saver
 * awaiting its cache's load(), say): that call would wait for itself forever, so it fails at once.
 */
export class ReentrantCallError extends DepcacheError {
  override name = 'ReentrantCallError';
  constructor(
    readonly cacheName: string,
    readonly operation: string,
  ) {
    super(
      'EREENTRANT',
      `${cacheName}: ${operation}() was called from inside an operation of this same cache (a hook awaiting its own cache); ` +
        `it would wait for itself forever. Use the contents the hook was given, or call ${operation}() after the operation has ended`,
    );
  }
}

/**
 * A cache directory another user could read or change (owned by someone else, writable by group
 * or others, or a symbolic link): depcache refuses to load from it or save into it.
 */
export class UnsafeDirectoryError extends DepcacheError {
  override name = 'UnsafeDirectoryError';
  constructor(
    readonly directory: string,
    reason: string,
  ) {
    super(
      'EUNSAFE_DIRECTORY',
      `${directory}: refusing to use this cache directory: ${reason}. Another local user could read or plant caches there. ` +
        `Remove it (depcache recreates it, private to you), choose another baseDirectory, ` +
        `or pass sharedDirectory: true to the CacheManager if the sharing is on purpose`,
    );
  }
}

/**
 * memoize was called with arguments that cannot be keyed: functions, symbols, cycles, very deep
 * nesting, or objects whose state the key cannot see (`#private` fields, internal slots).
 */
export class UnkeyableArgumentsError extends DepcacheError {
  override name = 'UnkeyableArgumentsError';
  constructor(
    readonly functionName: string,
    readonly cacheName: string,
    reason = 'a function, symbol or cycle',
  ) {
    super(
      'EUNKEYABLE',
      `${cacheName}: cannot key the arguments of ${functionName || 'an anonymous function'}: ${reason}; ` +
        `pass a key option that returns what the result depends on (key: (url) => url.href, say), or onUnkeyable: 'call'`,
    );
  }
}

/** `pool.acquire()` waited longer than `acquireTimeoutMs`. */
export class PoolTimeoutError extends DepcacheError {
  override name = 'PoolTimeoutError';
  constructor(
    readonly poolName: string,
    readonly waitedMs: number,
  ) {
    super('EPOOL_TIMEOUT', `${poolName}: no object available within ${Math.round(waitedMs)} ms`);
  }
}

/** The pool is closed: no acquire succeeds any more. */
export class PoolClosedError extends DepcacheError {
  override name = 'PoolClosedError';
  constructor(readonly poolName: string) {
    super('EPOOL_CLOSED', `${poolName}: the pool is closed`);
  }
}

/** Creating an object failed or timed out; the original error is in `cause`. */
export class PoolCreateError extends DepcacheError {
  override name = 'PoolCreateError';
  constructor(
    readonly poolName: string,
    cause: unknown,
  ) {
    super('EPOOL_CREATE', `${poolName}: create failed: ${errorMessage(cause)}`, { cause });
  }
}

/** release() or destroy() got an object the pool did not lend (a double release, or a foreign one). */
export class PoolReleaseError extends DepcacheError {
  override name = 'PoolReleaseError';
  constructor(
    readonly poolName: string,
    reason: string,
  ) {
    super('EPOOL_RELEASE', `${poolName}: ${reason}`);
  }
}

/** More acquirers were waiting than `maxWaiting` allows. */
export class PoolFullError extends DepcacheError {
  override name = 'PoolFullError';
  constructor(
    readonly poolName: string,
    readonly maxWaiting: number,
  ) {
    super('EPOOL_FULL', `${poolName}: ${maxWaiting} acquirers are already waiting (maxWaiting)`);
  }
}

/** @internal */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function describeName(name: unknown): string {
  if (typeof name !== 'string') return `(${typeof name})`;
  return JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
}

function describeKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key.length > 60 ? `${key.slice(0, 60)}…` : key);
  if (typeof key === 'bigint') return `${key}n`;
  if (typeof key === 'symbol' || typeof key === 'function') return `(${typeof key})`;
  try {
    return String(key);
  } catch {
    return `(${typeof key})`;
  }
}
