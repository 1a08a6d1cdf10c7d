import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import {
  Pool,
  PoolClosedError,
  PoolCreateError,
  PoolFullError,
  PoolReleaseError,
  PoolTimeoutError,
  type PoolOptions,
} from '../lib';
import { assertRejects, captureWarnings, deferred, usePools } from './helpers';

interface Conn {
  id: number;
  closed: boolean;
  query(sql: string): Promise<string>;
}

/** A pool of fake connections, counting creates and destroys. */
function connPool(options: Partial<PoolOptions<Conn>> = {}) {
  let next = 0;
  const destroyed: Conn[] = [];
  const pool = new Pool<Conn>({
    create: () => {
      const conn: Conn = {
        id: ++next,
        closed: false,
        query: async (sql) => `${conn.id}:${sql}`,
      };
      return conn;
    },
    destroy: (c) => {
      c.closed = true;
      destroyed.push(c);
    },
    ...options,
  });
  return { pool, destroyed, created: () => next };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('Pool', () => {
  const track = usePools();

  describe('#acquire() and #release()', () => {
    it('lends, takes back and reuses objects, counting them', async () => {
      const { pool } = connPool();
      track(pool);
      const a = await pool.acquire();
      pool.release(a);
      const b = await pool.acquire();
      expect(b).to.equal(a);
      pool.release(b);
      expect(pool.stats).to.include({ created: 1, acquired: 2, released: 2, destroyed: 0, size: 1, idle: 1, borrowed: 0 });
    });

    it('lends the most recent idle object first (lifo), or the oldest (fifo)', async () => {
      for (const order of ['lifo', 'fifo'] as const) {
        const { pool } = connPool({ order });
        track(pool);
        const [a, b] = await Promise.all([pool.acquire(), pool.acquire()]);
        pool.release(a as Conn);
        pool.release(b as Conn);
        const first = await pool.acquire();
        expect(first, order).to.equal(order === 'lifo' ? b : a);
      }
    });

    it('makes waiters wait at maxSize and serves them first come, first served', async () => {
      const { pool } = connPool({ maxSize: 1 });
      track(pool);
      const a = await pool.acquire();
      const order: string[] = [];
      const w1 = pool.acquire().then((c) => (order.push('w1'), c));
      const w2 = pool.acquire().then((c) => (order.push('w2'), c));
      expect(pool.stats.pending).to.equal(2);
      pool.release(a);
      pool.release(await w1);
      await w2;
      expect(order).to.deep.equal(['w1', 'w2']);
    });

    it('rejects a double release and a foreign object', async () => {
      const { pool } = connPool();
      track(pool);
      const a = await pool.acquire();
      pool.release(a);
      expect(() => pool.release(a)).to.throw(PoolReleaseError).with.property('code', 'EPOOL_RELEASE');
      expect(() => pool.release({ id: 0 } as Conn)).to.throw(PoolReleaseError);
    });

    it('refuses more than maxWaiting waiters', async () => {
      const { pool } = connPool({ maxSize: 1, maxWaiting: 1 });
      track(pool);
      await pool.acquire();
      void pool.acquire().catch(() => undefined);
      await assertRejects(pool.acquire(), PoolFullError, 'EPOOL_FULL');
    });

    it('stops waiting when the signal aborts, and gives the object to the next one', async () => {
      const { pool } = connPool({ maxSize: 1 });
      track(pool);
      const a = await pool.acquire();
      const controller = new AbortController();
      const aborted = pool.acquire({ signal: controller.signal });
      const next = pool.acquire();
      controller.abort(new Error('user gave up'));
      let reason: unknown;
      await aborted.catch((e) => (reason = e));
      expect((reason as Error).message).to.equal('user gave up');
      expect(pool.stats.pending).to.equal(1);
      pool.release(a);
      expect(await next).to.equal(a);
    });

    it('validates idle objects before lending them', async () => {
      let valid = false;
      const { pool, destroyed } = connPool({ validate: () => valid });
      track(pool);
      const a = await pool.acquire();
      pool.release(a);
      const b = await pool.acquire(); // a fails validation: destroyed, b is new
      expect(b).to.not.equal(a);
      expect(destroyed).to.deep.equal([a]);
      valid = true;
      pool.release(b);
      expect(await pool.acquire()).to.equal(b);
    });

    it('keeps at most maxIdle idle objects (cachepool pool_size)', async () => {
      const { pool, destroyed } = connPool({ maxIdle: 1 });
      track(pool);
      const [a, b] = await Promise.all([pool.acquire(), pool.acquire()]);
      pool.release(a as Conn);
      pool.release(b as Conn);
      await flush();
      expect(pool.stats.idle).to.equal(1);
      expect(destroyed).to.deep.equal([b]);
    });
  });

  describe('sizes and retirement', () => {
    it('creates minSize objects at start and refills after a destroy', async () => {
      const { pool, created } = connPool({ minSize: 2 });
      track(pool);
      await flush();
      expect(pool.stats.idle).to.equal(2);
      const a = await pool.acquire();
      await pool.destroy(a);
      await flush();
      expect(created()).to.equal(3);
      expect(pool.stats.size).to.equal(2);
    });

    it('retires an object after maxUses', async () => {
      const { pool, destroyed } = connPool({ maxUses: 2 });
      track(pool);
      const a = await pool.acquire();
      pool.release(a);
      expect(await pool.acquire()).to.equal(a);
      pool.release(a);
      await flush();
      expect(destroyed).to.deep.equal([a]);
      expect(await pool.acquire()).to.not.equal(a);
    });

    it('destroys an object while it is lent; its later release is ignored', async () => {
      const { pool, destroyed } = connPool({ minSize: 1 });
      track(pool);
      const a = await pool.acquire();
      await pool.destroy(a);
      expect(destroyed).to.deep.equal([a]);
      expect(pool.stats.borrowed).to.equal(0);
      expect(() => pool.release(a)).to.not.throw();
      await flush();
      expect(pool.stats.idle).to.equal(1); // refilled to minSize
    });
  });

  describe('with fake timers', () => {
    let clock: ReturnType<typeof FakeTimers.install>;
    beforeEach(() => {
      clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    });
    afterEach(() => clock.uninstall());

    it('times out a waiter after acquireTimeoutMs, on time', async () => {
      const { pool } = connPool({ maxSize: 1, acquireTimeoutMs: 1000 });
      track(pool);
      await pool.acquire();
      let settledAt = -1;
      const waiting = pool.acquire().catch((e) => {
        settledAt = Date.now();
        throw e;
      });
      const rejected = assertRejects(waiting, PoolTimeoutError, 'EPOOL_TIMEOUT'); // handled from the start
      const start = Date.now();
      await clock.tickAsync(999);
      expect(settledAt).to.equal(-1);
      await clock.tickAsync(1);
      const err = await rejected;
      expect(settledAt - start).to.equal(1000);
      expect(err.waitedMs).to.equal(1000);
    });

    it('settles on time when create always rejects (generic-pool never settles)', async () => {
      let creates = 0;
      const pool = track(
        new Pool<object>({
          create: async () => {
            creates++;
            throw new Error('db down');
          },
          acquireTimeoutMs: 1000,
        }),
      );
      const first = pool.acquire();
      const err = await assertRejects(first, PoolCreateError, 'EPOOL_CREATE');
      expect((err.cause as Error).message).to.equal('db down'); // the real error, to its waiter
      const second = pool.acquire(); // arrives during the backoff
      const settled = assertRejects(second, Error);
      await clock.tickAsync(1000);
      await settled;
      expect(creates).to.be.lessThan(10);
    });

    it('backs off exponentially between failed creates: no busy loop', async () => {
      let creates = 0;
      const errors: Error[] = [];
      const pool = track(
        new Pool<object>({
          create: async () => {
            creates++;
            throw new Error('nope');
          },
          minSize: 1, // keeps asking for an object in the background
          createRetryBaseMs: 100,
          createRetryMaxMs: 10_000,
        }),
      );
      pool.on('error', (e) => errors.push(e));
      await clock.tickAsync(10_000);
      // Delays double from ~100 ms (with jitter down to half): at most ~14 tries in 10 s.
      expect(creates).to.be.within(5, 16);
      expect(errors).to.have.length(creates); // each failed create is reported, once
      expect(errors.every((e) => e instanceof PoolCreateError)).to.equal(true);
    });

    it('aborts a create that outlives createTimeoutMs and destroys its late object', async () => {
      const late = deferred<object>();
      let signal: AbortSignal | undefined;
      const destroyed: object[] = [];
      const pool = track(
        new Pool<object>({
          create: (s) => {
            signal = s;
            return late.promise;
          },
          destroy: (o) => {
            destroyed.push(o);
          },
          createTimeoutMs: 500,
        }),
      );
      const waiting = assertRejects(pool.acquire(), PoolCreateError, 'EPOOL_CREATE'); // handled from the start
      await clock.tickAsync(500);
      await waiting;
      expect(signal?.aborted).to.equal(true);
      const lateObject = { late: true };
      late.resolve(lateObject);
      await clock.tickAsync(0);
      expect(destroyed).to.deep.equal([lateObject]);
      expect(pool.stats.size).to.equal(0);
    });

    it('retires objects past maxLifetimeMs', async () => {
      const { pool, destroyed } = connPool({ maxLifetimeMs: 10_000 });
      track(pool);
      const a = await pool.acquire();
      pool.release(a);
      await clock.tickAsync(10_000);
      const b = await pool.acquire();
      expect(b).to.not.equal(a);
      expect(destroyed).to.deep.equal([a]);
    });

    it('destroys idle objects beyond minSize after idleTimeoutMs', async () => {
      const { pool, destroyed } = connPool({ minSize: 1, idleTimeoutMs: 5000 });
      track(pool);
      const [a, b, c] = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
      for (const x of [a, b, c]) pool.release(x as Conn);
      await clock.tickAsync(4999);
      expect(destroyed).to.have.length(0);
      await clock.tickAsync(1);
      expect(destroyed).to.have.length(2);
      expect(pool.stats.idle).to.equal(1);
    });

    it('destroys idle objects that fail the health check', async () => {
      let healthy = true;
      const { pool, destroyed } = connPool({ healthCheck: () => healthy, healthIntervalMs: 1000 });
      track(pool);
      const a = await pool.acquire();
      pool.release(a);
      await clock.tickAsync(1000);
      expect(destroyed).to.have.length(0);
      healthy = false;
      await clock.tickAsync(1000);
      expect(destroyed).to.deep.equal([a]);
    });

    it('reports leases held longer than maxLeaseMs, with the acquire stack', async () => {
      const { pool, destroyed } = connPool({ maxLeaseMs: 1000, trackLeaks: true });
      track(pool);
      const leaks: Array<{ leasedMs: number; stack: string | undefined }> = [];
      pool.on('leak', (l) => leaks.push(l));
      const a = await pool.acquire();
      await clock.tickAsync(1000);
      expect(leaks).to.have.length(1);
      expect(leaks[0]?.stack).to.contain('pool.test');
      expect(destroyed).to.have.length(0); // reported, never destroyed in use
      pool.release(a);
    });
  });

  describe('background failures', () => {
    const failingPool = (name: string) =>
      track(
        new Pool<object>({
          name,
          create: async () => {
            throw new Error('nope');
          },
          minSize: 1, // keeps creating in the background, and failing
          createRetryBaseMs: 2,
          createRetryMaxMs: 4,
        }),
      );
    const warningsDuring = async (ms: number): Promise<Array<{ code?: string }>> =>
      (await captureWarnings(() => new Promise((r) => setTimeout(r, ms)))).warnings;

    it('warn once per pool and code when nobody listens for errors, however often they repeat', async () => {
      failingPool('warns-once');
      const warnings = await warningsDuring(150);
      expect(warnings.map((w) => w.code)).to.deep.equal(['DEPCACHE_EPOOL_CREATE']);
    });

    it('fall back to the warning when an error listener throws, and keep the pool running', async () => {
      const pool = failingPool('listener-throws');
      let heard = 0;
      pool.on('error', () => {
        heard++;
        throw new Error('listener bug');
      });
      const warnings = await warningsDuring(150);
      expect(heard).to.be.greaterThan(1); // retries went on after the listener threw
      expect(warnings.map((w) => w.code)).to.deep.equal(['DEPCACHE_EPOOL_CREATE']);
    });
  });

  describe('#use()', () => {
    it('releases after success and destroys after a sync throw, rethrowing it', async () => {
      const { pool, destroyed } = connPool();
      track(pool);
      expect(await pool.use((c) => c.query('ok'))).to.equal('1:ok');
      let thrown: unknown;
      await pool
        .use(() => {
          throw new Error('sync boom');
        })
        .catch((e) => (thrown = e));
      expect((thrown as Error).message).to.equal('sync boom');
      expect(destroyed).to.have.length(1);
      expect(pool.stats.borrowed).to.equal(0); // never leaked
    });

    it('lets reuse(err) keep the object after a rejection', async () => {
      const { pool, destroyed } = connPool();
      track(pool);
      const seen: unknown[] = [];
      await pool
        .use(async () => Promise.reject(new Error('retryable')), {
          reuse: (err) => {
            seen.push(err);
            return true;
          },
        })
        .catch(() => undefined);
      expect(seen).to.have.length(1);
      expect(destroyed).to.have.length(0);
      expect(pool.stats.idle).to.equal(1);
    });

    it('destroys when the reuse decider itself throws', async () => {
      const { pool, destroyed } = connPool();
      track(pool);
      await pool
        .use(() => Promise.reject(new Error('x')), {
          reuse: () => {
            throw new Error('decider');
          },
        })
        .catch(() => undefined);
      expect(destroyed).to.have.length(1);
    });
  });

  describe('#lease()', () => {
    it('releases once, and with await using', async () => {
      const { pool } = connPool();
      track(pool);
      {
        await using lease = await pool.lease();
        expect(lease.value.id).to.equal(1);
        expect(pool.stats.borrowed).to.equal(1);
      }
      expect(pool.stats.borrowed).to.equal(0);
      const lease = await pool.lease();
      lease.release();
      expect(() => lease.release()).to.throw(PoolReleaseError);
    });
  });

  describe('#close() and #drain()', () => {
    it('rejects waiters at once, waits for leases, then refuses acquires', async () => {
      const { pool, destroyed } = connPool({ maxSize: 1 });
      const a = await pool.acquire();
      const waiting = pool.acquire();
      let closed = false;
      const closing = pool.close().then(() => (closed = true));
      await assertRejects(waiting, PoolClosedError, 'EPOOL_CLOSED');
      await assertRejects(pool.acquire(), PoolClosedError);
      await flush();
      expect(closed).to.equal(false); // a lease is still out
      pool.release(a);
      await closing;
      expect(destroyed).to.deep.equal([a]);
      await pool.close(); // twice is fine
    });

    it('destroys leases still out after timeoutMs', async () => {
      const { pool, destroyed } = connPool();
      const a = await pool.acquire();
      await pool.close({ timeoutMs: 10 });
      expect(destroyed).to.deep.equal([a]);
      expect(() => pool.release(a)).to.not.throw(); // ignored: destroyed while lent
    });

    it('drain() resolves when the last lease comes back', async () => {
      const { pool } = connPool();
      track(pool);
      const a = await pool.acquire();
      let drained = false;
      const draining = pool.drain().then(() => (drained = true));
      await flush();
      expect(drained).to.equal(false);
      pool.release(a);
      await draining;
    });
  });

  describe('#scoped()', () => {
    it('binds one object per async context and releases it when run() settles', async () => {
      const { pool } = connPool();
      track(pool);
      const scope = pool.scoped();
      const seen: Array<[string, number, number]> = [];
      const job = (name: string) =>
        scope.run(async () => {
          const first = await scope.current();
          await flush();
          const again = await scope.current();
          const answer = await scope.proxy.query(name);
          seen.push([name, first.id, again.id]);
          expect(answer.startsWith(`${first.id}:`)).to.equal(true);
          expect(await scope.proxy.id).to.equal(first.id);
        });
      await Promise.all([job('a'), job('b'), job('c')]);
      for (const [, first, again] of seen) expect(first).to.equal(again);
      expect(new Set(seen.map((s) => s[1])).size).to.equal(3); // concurrent contexts: distinct objects
      expect(pool.stats.borrowed).to.equal(0);
      await assertRejects(scope.current(), TypeError);
    });
  });

  describe('stats', () => {
    it('reports wait and lease percentiles, timing every loan when a time limit is set', async () => {
      const { pool } = connPool({ maxLifetimeMs: 3600_000 });
      track(pool);
      for (let i = 0; i < 10; i++) pool.release(await pool.acquire());
      const { waitMs, leaseMs } = pool.stats;
      expect(waitMs.samples).to.equal(10);
      expect(leaseMs.samples).to.equal(10);
      expect(leaseMs.max).to.be.at.least(leaseMs.p50);
    });

    it('times one loan in 16 otherwise, so the hot path reads no clock', async () => {
      const { pool } = connPool();
      track(pool);
      for (let i = 0; i < 64; i++) pool.release(await pool.acquire());
      expect(pool.stats.waitMs.samples).to.equal(64);
      expect(pool.stats.leaseMs.samples).to.equal(4);
    });
  });

  describe('options', () => {
    it('rejects bad options with a TypeError naming them', () => {
      expect(() => new Pool({} as PoolOptions<object>)).to.throw(TypeError, /create/);
      expect(() => new Pool({ create: () => ({}), maxSize: 0 })).to.throw(TypeError, /maxSize/);
      expect(() => new Pool({ create: () => ({}), acquireTimeoutMs: -1 })).to.throw(TypeError, /acquireTimeoutMs/);
      expect(() => new Pool({ create: () => ({}), minSize: 5, maxSize: 2 })).to.throw(RangeError, /minSize/);
    });
  });
});
