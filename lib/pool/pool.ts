import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import {
  DepcacheError,
  PoolClosedError,
  PoolCreateError,
  PoolFullError,
  PoolReleaseError,
  PoolTimeoutError,
  errorMessage,
} from '../errors';
import { emitGuarded, reportBackgroundError } from '../background-errors';
import { Deque } from './deque';
import { type Percentiles, Samples } from './samples';

type MaybePromise<T> = T | Promise<T>;

/** Options of a {@link Pool}. Durations are in ms; `Infinity` means "never". */
export interface PoolOptions<T> {
  /** Makes a new object; the signal aborts when the create times out or the pool closes. */
  readonly create: (signal: AbortSignal) => MaybePromise<T>;
  /** Disposes of an object for good. @default nothing */
  readonly destroy?: (value: T) => MaybePromise<void>;
  /** Checks an idle object before it is lent; false destroys it and tries the next. @default none */
  readonly validate?: (value: T) => MaybePromise<boolean>;
  /** Name used in error messages. @default 'pool' */
  readonly name?: string;
  /** Objects created at start and kept (refilled after destroys). @default 0 */
  readonly minSize?: number;
  /** Most objects alive at once, lent, idle or being created. @default 10 */
  readonly maxSize?: number;
  /** Most idle objects kept; extras are destroyed on release (cachepool's pool_size). @default maxSize */
  readonly maxIdle?: number;
  /** How long acquire() waits before PoolTimeoutError. @default Infinity */
  readonly acquireTimeoutMs?: number;
  /** Most acquirers waiting at once; more get PoolFullError. @default Infinity */
  readonly maxWaiting?: number;
  /** Loans after which an object is retired. @default Infinity */
  readonly maxUses?: number;
  /** Age after which an object is retired (checked when it comes back or is taken). @default Infinity */
  readonly maxLifetimeMs?: number;
  /** Idle time after which an object beyond minSize is destroyed. @default Infinity */
  readonly idleTimeoutMs?: number;
  /** Periodic check of idle objects; false (or a throw) destroys the object. @default none */
  readonly healthCheck?: (value: T) => MaybePromise<boolean>;
  /** How often healthCheck runs. @default 30000 */
  readonly healthIntervalMs?: number;
  /** Which idle object is lent first: the most recently returned, or the oldest. @default 'lifo' */
  readonly order?: 'lifo' | 'fifo';
  /** A create still running after this is aborted, failed, and its late result destroyed. @default Infinity */
  readonly createTimeoutMs?: number;
  /** First delay before retrying after a failed create; doubles per failure, with jitter. @default 100 */
  readonly createRetryBaseMs?: number;
  /** Longest delay between create retries. @default 10000 */
  readonly createRetryMaxMs?: number;
  /** Leases held longer are reported with a `leak` event (never destroyed). @default Infinity */
  readonly maxLeaseMs?: number;
  /** Records the acquire stack of each lease, for `leak` events. Costs a stack trace per acquire. @default false */
  readonly trackLeaks?: boolean;
  /** The time source (ms). @default Date.now */
  readonly clock?: () => number;
}

/** Counters and timings of a pool. */
export interface PoolStats {
  readonly created: number;
  readonly acquired: number;
  readonly released: number;
  readonly destroyed: number;
  /** Acquirers waiting now. */
  readonly pending: number;
  /** Objects alive: idle, lent, or being created. */
  readonly size: number;
  readonly idle: number;
  readonly borrowed: number;
  readonly creating: number;
  /** How long acquires waited (0 for those served at once). */
  readonly waitMs: Percentiles;
  /** How long leases were held. */
  readonly leaseMs: Percentiles;
}

/** What a `leak` event carries. */
export interface PoolLeak<T> {
  readonly value: T;
  readonly leasedMs: number;
  /** The acquire stack, with `trackLeaks`. */
  readonly stack: string | undefined;
}

/** Events of a pool. */
export interface PoolEvents<T> {
  create: [T];
  destroy: [T];
  error: [Error];
  leak: [PoolLeak<T>];
}

/** Options of `pool.use()`. */
export interface PoolUseOptions {
  /** Decides, from the error fn threw, whether the object goes back to the pool (true) or is destroyed. @default () => false */
  readonly reuse?: (err: unknown) => boolean;
  readonly signal?: AbortSignal;
}

const IDLE = 0;
const LENT = 1;
const GONE = 2;
const CHECKING = 3;

interface Slot<T> {
  readonly value: T;
  readonly createdAt: number;
  uses: number;
  state: number;
  since: number; // lent at (-1: this loan is not timed), or idle since
  stack: string | undefined;
  leakReported: boolean;
}

interface Waiter<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (err: unknown) => void;
  readonly enqueuedAt: number;
  readonly deadline: number;
  settled: boolean;
  hasCreate: boolean;
  readonly stack: string | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The timeout of the create this waiter triggered, ref'd while the waiter waits on it. */
  createTimer: NodeJS.Timeout | undefined;
}

/**
 * A pool of reusable objects (cachepool + ProxyPatternPool), without the failure modes of
 * generic-pool and tarn: a failed create reaches the waiter that triggered it and is retried
 * with backoff (never a busy loop); one deadline timer serves every waiter; hot paths are O(1).
 *
 * @example
 * const pool = new Pool({ create: () => connect(), destroy: (c) => c.end(), maxSize: 5 });
 * const rows = await pool.use((conn) => conn.query('select 1'));
 */
export class Pool<T> extends EventEmitter<PoolEvents<T>> {
  readonly name: string;
  readonly #create: (signal: AbortSignal) => MaybePromise<T>;
  readonly #destroyHook: ((value: T) => MaybePromise<void>) | undefined;
  readonly #validate: ((value: T) => MaybePromise<boolean>) | undefined;
  readonly #healthCheck: ((value: T) => MaybePromise<boolean>) | undefined;
  readonly #minSize: number;
  readonly #maxSize: number;
  readonly #maxIdle: number;
  readonly #acquireTimeoutMs: number;
  readonly #maxWaiting: number;
  readonly #maxUses: number;
  readonly #maxLifetimeMs: number;
  readonly #idleTimeoutMs: number;
  readonly #healthIntervalMs: number;
  readonly #lifo: boolean;
  readonly #createTimeoutMs: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #maxLeaseMs: number;
  readonly #trackLeaks: boolean;
  readonly #clock: () => number;
  // Whether every loan must be timed (lease limits, lifetimes, idle expiry); else 1 in 16 is,
  // for the lease-time percentiles, and the hot path reads no clock.
  readonly #timeEveryLoan: boolean;
  #loanTick = 0;

  readonly #slots = new Map<T, Slot<T>>();
  readonly #idle = new Deque<Slot<T>>();
  readonly #waiters = new Deque<Waiter<T>>();
  readonly #creates = new Set<AbortController>();
  // Objects destroyed while lent, whose later release is ignored (primitives in a Set: a
  // WeakSet cannot hold them).
  readonly #destroyedWhileLent = new WeakSet<object>();
  readonly #destroyedWhileLentPrimitives = new Set<unknown>();
  // validate and health checks in flight: their objects are neither idle nor lent, and close()
  // waits for them.
  readonly #checks = new Set<Promise<unknown>>();
  readonly #destroying = new Set<Promise<void>>();
  #waiting = 0;
  #creating = 0;
  #borrowed = 0;
  #failures = 0;
  #nextCreateAt = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #drainers: Array<() => void> = [];
  #deadlineTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #healthTimer: NodeJS.Timeout | undefined;
  #leakTimer: NodeJS.Timeout | undefined;
  #created = 0;
  #acquired = 0;
  #released = 0;
  #destroyed = 0;
  readonly #waitSamples = new Samples();
  readonly #leaseSamples = new Samples();

  constructor(options: PoolOptions<T>) {
    super();
    const o = options ?? ({} as PoolOptions<T>);
    if (typeof o.create !== 'function') throw new TypeError(`create: expected a function, got ${typeof o.create}`);
    for (const hook of ['destroy', 'validate', 'healthCheck', 'clock'] as const) {
      if (o[hook] !== undefined && typeof o[hook] !== 'function') {
        throw new TypeError(`${hook}: expected a function, got ${typeof o[hook]}`);
      }
    }
    this.name = o.name ?? 'pool';
    this.#create = o.create;
    this.#destroyHook = o.destroy;
    this.#validate = o.validate;
    this.#healthCheck = o.healthCheck;
    this.#maxSize = count('maxSize', o.maxSize ?? 10, 1);
    this.#minSize = count('minSize', o.minSize ?? 0, 0);
    if (this.#minSize > this.#maxSize) {
      throw new RangeError(`minSize: expected at most maxSize (${this.#maxSize}), got ${this.#minSize}`);
    }
    this.#maxIdle = count('maxIdle', o.maxIdle ?? this.#maxSize, 0);
    this.#acquireTimeoutMs = duration('acquireTimeoutMs', o.acquireTimeoutMs);
    this.#maxWaiting = count('maxWaiting', o.maxWaiting ?? Number.POSITIVE_INFINITY, 0);
    this.#maxUses = count('maxUses', o.maxUses ?? Number.POSITIVE_INFINITY, 1);
    this.#maxLifetimeMs = duration('maxLifetimeMs', o.maxLifetimeMs);
    this.#idleTimeoutMs = duration('idleTimeoutMs', o.idleTimeoutMs);
    this.#healthIntervalMs = duration('healthIntervalMs', o.healthIntervalMs ?? 30_000);
    this.#createTimeoutMs = duration('createTimeoutMs', o.createTimeoutMs);
    this.#retryBaseMs = duration('createRetryBaseMs', o.createRetryBaseMs ?? 100);
    this.#retryMaxMs = duration('createRetryMaxMs', o.createRetryMaxMs ?? 10_000);
    this.#maxLeaseMs = duration('maxLeaseMs', o.maxLeaseMs);
    if (o.order !== undefined && o.order !== 'lifo' && o.order !== 'fifo') {
      throw new TypeError(`order: expected 'lifo' or 'fifo', got ${String(o.order)}`);
    }
    this.#lifo = o.order !== 'fifo';
    this.#trackLeaks = o.trackLeaks === true;
    this.#clock = o.clock ?? Date.now;
    this.#timeEveryLoan =
      this.#maxLeaseMs !== Number.POSITIVE_INFINITY ||
      this.#maxLifetimeMs !== Number.POSITIVE_INFINITY ||
      this.#idleTimeoutMs !== Number.POSITIVE_INFINITY ||
      this.#trackLeaks;
    this.#fill();
  }

  // ----- Borrowing -----

  /**
   * Lends an idle object, or a new one, or waits for one.
   * @throws {PoolClosedError} EPOOL_CLOSED once the pool closes
   * @throws {PoolTimeoutError} EPOOL_TIMEOUT after acquireTimeoutMs
   * @throws {PoolCreateError} EPOOL_CREATE when the create this acquire triggered failed
   * @throws {PoolFullError} EPOOL_FULL when maxWaiting acquirers already wait
   */
  acquire(options?: { readonly signal?: AbortSignal }): Promise<T> {
    if (this.#closed) return Promise.reject(new PoolClosedError(this.name));
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    // The caller's stack, for leak reports: only here is it the caller's.
    const stack = this.#trackLeaks ? new Error('acquired here').stack : undefined;
    if (this.#validate === undefined) {
      const slot = this.#takeIdle();
      if (slot !== undefined) {
        this.#lend(slot, 0, stack);
        return Promise.resolve(slot.value);
      }
    } else if (this.#idle.length > 0) {
      return this.#acquireValidated(signal, stack);
    }
    return this.#enqueue(signal, stack);
  }

  /**
   * Gives a lent object back. An object destroyed while lent is ignored.
   * @throws {PoolReleaseError} EPOOL_RELEASE for an object not lent by this pool (or released twice)
   */
  release(value: T): void {
    const slot = this.#slots.get(value);
    if (slot === undefined || slot.state !== LENT) {
      if (this.#forgetDestroyedWhileLent(value)) return;
      throw new PoolReleaseError(
        this.name,
        slot === undefined ? 'release() of an object this pool did not lend' : 'release() of an object that is not lent (released twice?)',
      );
    }
    let now = 0;
    if (slot.since >= 0) {
      now = this.#clock();
      this.#leaseSamples.add(now - slot.since);
    }
    this.#released++;
    this.#borrowed--;
    if (slot.uses >= this.#maxUses || (this.#timeEveryLoan && now - slot.createdAt >= this.#maxLifetimeMs)) {
      void this.#retire(slot);
    } else {
      this.#giveBack(slot, now);
    }
    if (this.#borrowed === 0) this.#drained();
  }

  /**
   * Destroys an object now, lent or idle; the pool refills to minSize and serves waiters.
   * @throws {PoolReleaseError} EPOOL_RELEASE for an object this pool does not hold
   */
  async destroy(value: T): Promise<void> {
    const slot = this.#slots.get(value);
    if (slot === undefined || slot.state === GONE) {
      throw new PoolReleaseError(this.name, 'destroy() of an object this pool does not hold');
    }
    if (slot.state === LENT) {
      this.#borrowed--;
      this.#rememberDestroyedWhileLent(value);
      if (this.#borrowed === 0) this.#drained();
    } else if (slot.state === IDLE) {
      this.#idle.removeWhere((s) => s === slot);
    }
    await this.#retire(slot);
  }

  /**
   * Runs `fn` with a pooled object and gives it back; when fn throws (sync or async), `reuse(err)`
   * decides between release and destroy (default: destroy), and the error is rethrown.
   */
  async use<R>(fn: (value: T) => MaybePromise<R>, options: PoolUseOptions = {}): Promise<R> {
    const value = await this.acquire({ signal: options.signal });
    let result: R;
    try {
      result = await fn(value);
    } catch (err) {
      let keep = false;
      try {
        keep = options.reuse ? options.reuse(err) === true : false;
      } catch {
        keep = false; // a throwing decider cannot vouch for the object
      }
      if (keep) this.release(value);
      else await this.destroy(value).catch(() => undefined);
      throw err;
    }
    this.release(value);
    return result;
  }

  /** Lends an object as a lease: `lease.value`, `release()`, `destroy()`, `await using`. */
  async lease(options?: { readonly signal?: AbortSignal }): Promise<PoolLease<T>> {
    return new PoolLease(this, await this.acquire(options));
  }

  /** One pooled object per async context (ProxyPatternPool's per-thread proxy, for async code). */
  scoped(): PoolScope<T> {
    return new PoolScope(this);
  }

  // ----- Life and death -----

  /** Resolves once no object is lent (now, or when the last one comes back). */
  drain(): Promise<void> {
    if (this.#borrowed === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainers.push(resolve));
  }

  /**
   * Refuses new acquires at once, rejects every waiter, aborts creates, destroys idle objects,
   * then waits for leases to come back (at most `timeoutMs`, after which they are destroyed).
   * Safe to call twice. Never polls.
   */
  close(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = duration('timeoutMs', options.timeoutMs);
    this.#closing ??= (async () => {
      this.#closed = true;
      for (let w = this.#waiters.shift(); w !== undefined; w = this.#waiters.shift()) {
        if (!w.settled) this.#settle(w, false, new PoolClosedError(this.name));
      }
      for (const controller of this.#creates) controller.abort(new PoolClosedError(this.name));
      this.#stopTimers();
      const idle: Slot<T>[] = [];
      for (let s = this.#idle.shift(); s !== undefined; s = this.#idle.shift()) idle.push(s);
      await Promise.all(idle.map((s) => this.#retire(s)));
      // Objects under a validate or health check come back to a closed pool, which retires them.
      while (this.#checks.size > 0) await Promise.all([...this.#checks]);
      if (this.#borrowed > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          this.drain(),
          new Promise<void>((resolve) => {
            if (Number.isFinite(timeoutMs)) timer = setTimeout(resolve, timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        const stillLent = [...this.#slots.values()].filter((s) => s.state === LENT);
        for (const s of stillLent) {
          this.#borrowed--;
          this.#rememberDestroyedWhileLent(s.value);
        }
        if (this.#borrowed === 0) this.#drained();
        await Promise.all(stillLent.map((s) => this.#retire(s)));
      }
      while (this.#destroying.size > 0) await Promise.all([...this.#destroying]);
      this.#leakTimer = clear(this.#leakTimer);
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  get stats(): PoolStats {
    return {
      created: this.#created,
      acquired: this.#acquired,
      released: this.#released,
      destroyed: this.#destroyed,
      pending: this.#waiting,
      size: this.#slots.size + this.#creating,
      idle: this.#idle.length,
      borrowed: this.#borrowed,
      creating: this.#creating,
      waitMs: this.#waitSamples.percentiles(),
      leaseMs: this.#leaseSamples.percentiles(),
    };
  }

  // ----- Internals -----

  #takeIdle(): Slot<T> | undefined {
    for (;;) {
      const slot = this.#lifo ? this.#idle.pop() : this.#idle.shift();
      if (slot === undefined) return undefined;
      if (this.#maxLifetimeMs !== Number.POSITIVE_INFINITY && this.#clock() - slot.createdAt >= this.#maxLifetimeMs) {
        void this.#retire(slot);
        continue;
      }
      return slot;
    }
  }

  #lend(slot: Slot<T>, waitedMs: number, stack: string | undefined): void {
    slot.state = LENT;
    slot.uses++;
    slot.since = this.#timeEveryLoan || (++this.#loanTick & 15) === 0 ? this.#clock() : -1;
    slot.leakReported = false;
    slot.stack = stack;
    this.#acquired++;
    this.#borrowed++;
    this.#waitSamples.add(waitedMs);
    if (this.#maxLeaseMs !== Number.POSITIVE_INFINITY && this.#leakTimer === undefined) this.#armLeakTimer();
  }

  async #acquireValidated(signal: AbortSignal | undefined, stack: string | undefined): Promise<T> {
    const validate = this.#validate as (value: T) => MaybePromise<boolean>;
    for (let slot = this.#takeIdle(); slot !== undefined; slot = this.#takeIdle()) {
      slot.state = CHECKING;
      const ok = await this.#check(validate, slot);
      // destroy() ran during the check: the object is gone, never to be lent or kept.
      if (slot.state === GONE) {
        if (this.#closed) throw new PoolClosedError(this.name);
        continue;
      }
      if (ok && !this.#closed && !signal?.aborted) {
        this.#lend(slot, 0, stack);
        return slot.value;
      }
      if (ok) this.#giveBack(slot, this.#clock());
      else await this.#retire(slot);
      if (this.#closed) throw new PoolClosedError(this.name);
      if (signal?.aborted) throw signal.reason;
    }
    return this.#enqueue(signal, stack);
  }

  #enqueue(signal: AbortSignal | undefined, stack: string | undefined): Promise<T> {
    if (this.#waiting >= this.#maxWaiting) return Promise.reject(new PoolFullError(this.name, this.#maxWaiting));
    return new Promise<T>((resolve, reject) => {
      const now = this.#clock();
      const waiter: Waiter<T> = {
        resolve,
        reject,
        enqueuedAt: now,
        deadline: now + this.#acquireTimeoutMs,
        settled: false,
        hasCreate: false,
        stack,
        signal,
        onAbort: undefined,
        createTimer: undefined,
      };
      if (signal) {
        waiter.onAbort = () => this.#settle(waiter, false, signal.reason);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      this.#waiting++;
      if (this.#deadlineTimer === undefined && Number.isFinite(waiter.deadline)) this.#armDeadline();
      this.#fill();
    });
  }

  /** Settles a waiter once: resolve with a value, or reject. */
  #settle(waiter: Waiter<T>, ok: boolean, valueOrError: unknown): void {
    if (waiter.settled) return;
    waiter.settled = true;
    this.#waiting--;
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
    // Nobody waits on its create any more: the create's timeout no longer holds the process.
    waiter.createTimer?.unref();
    waiter.createTimer = undefined;
    // The last waiter is gone: its deadline timer would only hold the process (up to
    // acquireTimeoutMs) to find nothing to time out. The next waiter arms a new one.
    if (this.#waiting === 0) this.#deadlineTimer = clear(this.#deadlineTimer);
    if (ok) waiter.resolve(valueOrError as T);
    else waiter.reject(valueOrError);
  }

  #nextWaiter(): Waiter<T> | undefined {
    for (let w = this.#waiters.shift(); w !== undefined; w = this.#waiters.shift()) if (!w.settled) return w;
    return undefined;
  }

  /** Hands a returning or new object to the oldest waiter, else keeps it idle (or destroys extras). */
  #giveBack(slot: Slot<T>, now: number): void {
    const waiter = this.#nextWaiter();
    if (waiter !== undefined) {
      this.#lend(slot, this.#clock() - waiter.enqueuedAt, waiter.stack);
      this.#settle(waiter, true, slot.value);
      return;
    }
    if (this.#closed || this.#idle.length >= this.#maxIdle) {
      void this.#retire(slot);
      return;
    }
    slot.state = IDLE;
    slot.since = now;
    this.#idle.push(slot);
    if (this.#idleTimer === undefined && this.#idleTimeoutMs !== Number.POSITIVE_INFINITY) this.#armIdleTimer();
    if (this.#healthTimer === undefined && this.#healthCheck !== undefined) this.#armHealthTimer();
  }

  /** Runs a validate or health check on a slot, known to close() while it runs. Never throws. */
  async #check(check: (value: T) => MaybePromise<boolean>, slot: Slot<T>): Promise<boolean> {
    const running = (async () => {
      try {
        return (await check(slot.value)) === true;
      } catch (err) {
        this.#report(err);
        return false;
      }
    })();
    this.#checks.add(running);
    try {
      return await running;
    } finally {
      this.#checks.delete(running);
    }
  }

  #rememberDestroyedWhileLent(value: T): void {
    if (isObject(value)) this.#destroyedWhileLent.add(value);
    else this.#destroyedWhileLentPrimitives.add(value);
  }

  /** True (and forgotten) when `value` was destroyed while lent: its late release is ignored. */
  #forgetDestroyedWhileLent(value: T): boolean {
    if (isObject(value)) return this.#destroyedWhileLent.delete(value);
    return this.#destroyedWhileLentPrimitives.delete(value);
  }

  /** Destroys a slot for good (never throws: hook failures are reported), then refills. */
  #retire(slot: Slot<T>): Promise<void> {
    if (slot.state === GONE) return Promise.resolve();
    slot.state = GONE;
    this.#slots.delete(slot.value);
    this.#destroyed++;
    const destroying = (async () => {
      try {
        await this.#destroyHook?.(slot.value);
      } catch (err) {
        this.#report(new DepcacheError('EHOOK', `${this.name}: destroy failed: ${errorMessage(err)}`, { cause: err }));
      }
      this.#emitSafely('destroy', slot.value);
      this.#fill();
    })();
    // close() waits for every destroy, including those started in the background.
    this.#destroying.add(destroying);
    void destroying.finally(() => this.#destroying.delete(destroying));
    return destroying;
  }

  /** Starts creates for waiters without one, and up to minSize; respects backoff after failures. */
  #wantsCreate(): boolean {
    const live = this.#slots.size + this.#creating;
    return live < this.#maxSize && (this.#creating < this.#waiting || live < this.#minSize);
  }

  #fill(): void {
    if (this.#closed || !this.#wantsCreate()) return;
    const now = this.#clock();
    if (now < this.#nextCreateAt) {
      if (this.#retryTimer === undefined) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          this.#fill();
        }, this.#nextCreateAt - now);
        this.#retryTimer.unref();
      }
      return;
    }
    while (this.#wantsCreate()) this.#startCreate(this.#waiterWithoutCreate());
  }

  #waiterWithoutCreate(): Waiter<T> | undefined {
    for (const w of this.#waiters) {
      if (!w.settled && !w.hasCreate) {
        w.hasCreate = true;
        return w;
      }
    }
    return undefined;
  }

  #startCreate(trigger: Waiter<T> | undefined): void {
    this.#creating++;
    const controller = new AbortController();
    this.#creates.add(controller);
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      this.#creating--;
      this.#creates.delete(controller);
      if (timer !== undefined) clearTimeout(timer);
      if (trigger) {
        trigger.hasCreate = false;
        trigger.createTimer = undefined;
      }
      return true;
    };
    if (this.#createTimeoutMs !== Number.POSITIVE_INFINITY) {
      timer = setTimeout(() => {
        const err = new Error(`timed out after ${this.#createTimeoutMs} ms`);
        controller.abort(err);
        if (finish()) this.#createFailed(err, trigger);
      }, this.#createTimeoutMs);
      // Ref'd only while an acquire waits on this create: that acquire settles when it fires,
      // and a script awaiting it must see it settle rather than end with the create pending
      // (a create that holds no handle of its own). A background create (minSize) never holds.
      if (trigger !== undefined && !trigger.settled) trigger.createTimer = timer;
      else timer.unref();
      // close() aborts every create: its timeout has nothing left to abort, and must not outlive it.
      const created = timer;
      controller.signal.addEventListener('abort', () => clearTimeout(created), { once: true });
    }
    let pending: Promise<T>;
    try {
      pending = Promise.resolve(this.#create(controller.signal));
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (value) => {
        // A create that timed out or outlived the pool: its late object is destroyed.
        if (!finish() || this.#closed) {
          void this.#destroyLate(value);
          return;
        }
        if (this.#slots.has(value)) {
          // A singleton, or a primitive equal to one already held: lending it again would lend
          // one object twice at once. It belongs to its first slot, so it is not destroyed.
          this.#createFailed(
            new TypeError('create returned a value this pool already holds (a shared object or an equal primitive); every create must make a new one'),
            trigger,
          );
          return;
        }
        this.#created++;
        this.#failures = 0;
        const now = this.#clock();
        const slot: Slot<T> = { value, createdAt: now, uses: 0, state: IDLE, since: now, stack: undefined, leakReported: false };
        this.#slots.set(value, slot);
        this.#emitSafely('create', value);
        if (trigger !== undefined && !trigger.settled) {
          this.#lend(slot, now - trigger.enqueuedAt, trigger.stack);
          this.#settle(trigger, true, value);
        } else this.#giveBack(slot, now);
      },
      (err: unknown) => {
        if (finish()) this.#createFailed(err, trigger);
      },
    );
  }

  #createFailed(cause: unknown, trigger: Waiter<T> | undefined): void {
    this.#failures++;
    const delay = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** (this.#failures - 1));
    this.#nextCreateAt = this.#clock() + delay * (0.5 + Math.random() / 2);
    const error = new PoolCreateError(this.name, cause);
    if (trigger !== undefined && !trigger.settled) this.#settle(trigger, false, error);
    else if (!this.#closed) this.#report(error);
    this.#fill();
  }

  async #destroyLate(value: T): Promise<void> {
    try {
      await this.#destroyHook?.(value);
    } catch (err) {
      this.#report(err);
    }
  }

  #armDeadline(): void {
    let head = this.#waiters.peekFirst();
    while (head !== undefined && head.settled) {
      this.#waiters.shift();
      head = this.#waiters.peekFirst();
    }
    if (head === undefined || !Number.isFinite(head.deadline)) return;
    this.#deadlineTimer = setTimeout(() => {
      this.#deadlineTimer = undefined;
      const now = this.#clock();
      // Deadlines grow with arrival (one timeout for all), so expired waiters are at the head.
      for (let w = this.#waiters.peekFirst(); w !== undefined && (w.settled || w.deadline <= now); w = this.#waiters.peekFirst()) {
        this.#waiters.shift();
        if (!w.settled) this.#settle(w, false, new PoolTimeoutError(this.name, now - w.enqueuedAt));
      }
      this.#armDeadline();
    }, Math.max(0, head.deadline - this.#clock()));
    // Ref'd: it exists only while an acquire with a timeout waits (#settle clears it when the
    // last waiter goes, close() stops it), and a script awaiting that acquire must see it
    // settle (generic-pool's timeout fires too) rather than end with the acquire pending.
  }

  #armIdleTimer(): void {
    const oldest = this.#idle.peekFirst();
    if (oldest === undefined) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      const now = this.#clock();
      for (let s = this.#idle.peekFirst(); s !== undefined && now - s.since >= this.#idleTimeoutMs; s = this.#idle.peekFirst()) {
        if (this.#slots.size + this.#creating <= this.#minSize) break;
        this.#idle.shift();
        void this.#retire(s);
      }
      const next = this.#idle.peekFirst();
      if (next !== undefined && this.#slots.size + this.#creating > this.#minSize) this.#armIdleTimer();
    }, Math.max(0, oldest.since + this.#idleTimeoutMs - this.#clock()));
    this.#idleTimer.unref();
  }

  #armHealthTimer(): void {
    this.#healthTimer = setTimeout(() => {
      this.#healthTimer = undefined;
      void this.#runHealthChecks();
    }, this.#healthIntervalMs);
    this.#healthTimer.unref();
  }

  async #runHealthChecks(): Promise<void> {
    const check = this.#healthCheck as (value: T) => MaybePromise<boolean>;
    // Checked objects leave the idle list meanwhile, so nobody borrows one mid-check.
    const batch = this.#idle.removeWhere(() => true);
    for (const slot of batch) slot.state = CHECKING;
    await Promise.all(
      batch.map(async (slot) => {
        const ok = await this.#check(check, slot);
        if (slot.state === GONE) return; // destroyed during the check
        if (ok && !this.#closed) this.#giveBack(slot, slot.since);
        else await this.#retire(slot);
      }),
    );
    if (!this.#closed && this.#idle.length > 0 && this.#healthTimer === undefined) this.#armHealthTimer();
  }

  #armLeakTimer(): void {
    this.#leakTimer = setTimeout(() => {
      this.#leakTimer = undefined;
      const now = this.#clock();
      for (const slot of this.#slots.values()) {
        if (slot.state === LENT && !slot.leakReported && now - slot.since >= this.#maxLeaseMs) {
          slot.leakReported = true;
          this.#emitSafely('leak', { value: slot.value, leasedMs: now - slot.since, stack: slot.stack });
        }
      }
      if (this.#borrowed > 0 && !this.#closed) this.#armLeakTimer();
    }, this.#maxLeaseMs);
    this.#leakTimer.unref();
  }

  #stopTimers(): void {
    this.#retryTimer = clear(this.#retryTimer);
    this.#deadlineTimer = clear(this.#deadlineTimer);
    this.#idleTimer = clear(this.#idleTimer);
    this.#healthTimer = clear(this.#healthTimer);
  }

  #drained(): void {
    if (this.#drainers.length === 0) return;
    const drainers = this.#drainers;
    this.#drainers = [];
    for (const resolve of drainers) resolve();
  }

  #emitSafely<E extends 'create' | 'destroy' | 'leak'>(event: E, ...args: PoolEvents<T>[E]): void {
    emitGuarded(this, event, args, (err) => this.#report(err));
  }

  /** Background failures: an `error` event when someone listens, else a process warning (once per code). */
  #report(err: unknown): void {
    reportBackgroundError(this, err, `pool:${this.name}`, 'EPOOL');
  }
}

/** A lent object with its own release: once only, and `await using` releases it. */
export class PoolLease<T> {
  #done = false;
  constructor(
    readonly pool: Pool<T>,
    readonly value: T,
  ) {}

  /** @throws {PoolReleaseError} EPOOL_RELEASE when the lease already ended */
  release(): void {
    this.#end('release');
    this.pool.release(this.value);
  }

  /** @throws {PoolReleaseError} EPOOL_RELEASE when the lease already ended */
  destroy(): Promise<void> {
    this.#end('destroy');
    return this.pool.destroy(this.value);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#done) this.release();
  }

  #end(what: string): void {
    if (this.#done) throw new PoolReleaseError(this.pool.name, `${what}() of a lease that already ended`);
    this.#done = true;
  }
}

/** Method calls and property reads of T, each answered asynchronously by the scope's object. */
export type AsyncProxy<T> = {
  readonly [P in keyof T]: T[P] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : PromiseLike<T[P]>;
};

/**
 * One pooled object per async context (ProxyPatternPool's per-thread proxy, for async code):
 * `run(fn)` binds an object to fn's async context, acquired on first use and released when fn
 * settles; `current()` resolves it; `proxy.method(...)` and `await proxy.property` reach it.
 */
export class PoolScope<T> {
  readonly #pool: Pool<T>;
  readonly #storage = new AsyncLocalStorage<{ acquiring?: Promise<T> }>();
  /** Forwards `proxy.method(...args)` and `await proxy.property` to `current()`. */
  readonly proxy: AsyncProxy<T>;

  constructor(pool: Pool<T>) {
    this.#pool = pool;
    this.proxy = new Proxy(Object.create(null) as object, {
      get: (_target, property) => {
        if (property === 'then') return undefined; // the proxy itself is not a promise
        const call = (...args: unknown[]) =>
          this.current().then((value) => {
            const member = (value as Record<string | symbol, unknown>)[property];
            return typeof member === 'function' ? (member as (...a: unknown[]) => unknown).apply(value, args) : member;
          });
        // `await proxy.property` reads it: the function is also thenable.
        return Object.assign(call, {
          then: (onFulfilled?: (v: unknown) => unknown, onRejected?: (e: unknown) => unknown) =>
            this.current()
              .then((value) => (value as Record<string | symbol, unknown>)[property])
              .then(onFulfilled, onRejected),
        });
      },
    }) as AsyncProxy<T>;
  }

  /** Runs fn with its own pooled object (taken on first use), released when fn settles. */
  run<R>(fn: () => MaybePromise<R>): Promise<R> {
    const slot: { acquiring?: Promise<T> } = {};
    return this.#storage.run(slot, async () => {
      try {
        return await fn();
      } finally {
        if (slot.acquiring) {
          // Boxed, so a pooled value that is itself undefined (or any falsy value) is released too.
          const taken = await slot.acquiring.then(
            (value) => ({ value }),
            () => undefined,
          );
          if (taken !== undefined) this.#pool.release(taken.value);
        }
      }
    });
  }

  /** This context's object, acquired on first use. @throws {TypeError} outside run() */
  current(): Promise<T> {
    const slot = this.#storage.getStore();
    if (slot === undefined) return Promise.reject(new TypeError(`${this.#pool.name}: scope.current() outside scope.run()`));
    slot.acquiring ??= this.#pool.acquire();
    return slot.acquiring;
  }
}

function clear(timer: NodeJS.Timeout | undefined): undefined {
  if (timer !== undefined) clearTimeout(timer);
  return undefined;
}

function isObject(value: unknown): value is object {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

function count(name: string, value: number, min: number): number {
  if (!(value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && value >= min))) {
    throw new TypeError(`${name}: expected an integer ≥ ${min}, got ${String(value)} (${typeof value})`);
  }
  return value;
}

function duration(name: string, value: number | undefined): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (!(typeof value === 'number' && value >= 0 && !Number.isNaN(value))) {
    throw new TypeError(`${name}: expected a duration in ms ≥ 0, got ${String(value)} (${typeof value})`);
  }
  return value;
}
