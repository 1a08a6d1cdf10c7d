import { DepcacheError, errorMessage } from '../errors';

/**
 * Redis could not be reached, did not answer within the store's `timeoutMs`, or refused a
 * command. `cacheName` is '' for a connection failure reported outside any call.
 */
export class RedisUnavailableError extends DepcacheError {
  override name = 'RedisUnavailableError';
  constructor(
    readonly cacheName: string,
    readonly key: string,
    action: string,
    cause: unknown,
    /** The call gave up after the store's timeout (Redis may still run it later). */
    readonly timedOut = false,
  ) {
    super('EREDIS', `${cacheName === '' ? 'Redis' : cacheName}: ${action} failed (${key}): ${errorMessage(cause)}`, { cause });
  }
}

/**
 * Redis lost a cache's data (restarted without persistence, flushed): this process wrote back
 * what it holds instead of reloading nothing. Reported, not thrown.
 */
export class RedisDataLostError extends DepcacheError {
  override name = 'RedisDataLostError';
  constructor(
    readonly cacheName: string,
    readonly key: string,
    /** Entries this process wrote back. */
    readonly rewritten: number,
  ) {
    super('EREDIS_LOST', `${cacheName}: Redis lost the saved cache (${key}); this process wrote back the ${rewritten} entries it holds`);
  }
}

/**
 * The bus may have missed messages (its stream was trimmed past this process's read position,
 * or Redis restarted): every cache of the manager was invalidated, to be safe.
 */
export class BusGapError extends DepcacheError {
  override name = 'BusGapError';
  constructor(
    readonly managerName: string,
    reason: string,
  ) {
    super('EBUS_GAP', `${managerName}: the invalidation bus may have missed messages (${reason}); every cache here was invalidated`);
  }
}
