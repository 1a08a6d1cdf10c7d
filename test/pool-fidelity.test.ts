import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { Pool, PoolCreateError } from '../lib';
import { deferred, usePools } from './helpers';

const flush = () => new Promise((r) => setImmediate(r));

interface Conn {
  id: number;
  closed: boolean;
}

describe('Pool: what the peers\' issue trackers report', () => {
  const track = usePools();

  describe('destroy() while a check runs', () => {
    it('never lends an object destroyed during validate() (a close handler calling destroy)', async () => {
      let next = 0;
      const check = deferred<boolean>();
      let validating: Conn | undefined;
      const pool = track(
        new Pool<Conn>({
          create: () => ({ id: ++next, closed: false }),
          destroy: (c) => void (c.closed = true),
          validate: (c) => {
            validating = c;
            return check.promise;
          },
        }),
      );
      const first = await pool.acquire();
      pool.release(first);
      const acquiring = pool.acquire();
      await flush();
      expect(validating).to.equal(first);
      await pool.destroy(first); // the connection's 'close' handler, mid-ping
      check.resolve(true);
      const got = await acquiring;
      expect(got).to.not.equal(first);
      expect(got.closed).to.equal(false);
      pool.release(got);
      expect(pool.stats.borrowed).to.equal(0);
      await pool.close(); // resolves: nothing is stuck as lent
    });

    it('never puts back an object destroyed during a health check', async () => {
      const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
      try {
        const check = deferred<boolean>();
        let next = 0;
        const pool = track(
          new Pool<Conn>({
            create: () => ({ id: ++next, closed: false }),
            destroy: (c) => void (c.closed = true),
            healthCheck: () => check.promise,
            healthIntervalMs: 1000,
          }),
        );
        const conn = await pool.acquire();
        pool.release(conn);
        await clock.tickAsync(1000); // the check starts and waits on `check`
        await pool.destroy(conn);
        check.resolve(true);
        await clock.tickAsync(0);
        expect(pool.stats.idle).to.equal(0);
        const again = await pool.acquire();
        expect(again).to.not.equal(conn);
        pool.release(again);
      } finally {
        clock.uninstall();
      }
    });
  });

  it('resolves drain() after close({ timeoutMs }) destroyed the leases still out', async () => {
    let next = 0;
    const pool = track(new Pool<Conn>({ create: () => ({ id: ++next, closed: false }) }));
    await pool.acquire();
    const drained = pool.drain();
    await pool.close({ timeoutMs: 10 });
    let done = false;
    await Promise.race([drained.then(() => (done = true)), new Promise((r) => setTimeout(r, 500))]);
    expect(done).to.equal(true);
  });

  it('resolves close() only after an object under validate() is destroyed', async () => {
    const check = deferred<boolean>();
    const destroyed: Conn[] = [];
    let next = 0;
    const pool = new Pool<Conn>({
      create: () => ({ id: ++next, closed: false }),
      destroy: (c) => void destroyed.push(c),
      validate: () => check.promise,
    });
    const conn = await pool.acquire();
    pool.release(conn);
    const acquiring = pool.acquire().catch(() => undefined);
    await flush();
    let closed = false;
    const closing = pool.close().then(() => (closed = true));
    await flush();
    expect(closed).to.equal(false); // the validate still holds the object
    check.resolve(true);
    await closing;
    expect(destroyed).to.deep.equal([conn]);
    await acquiring;
  });

  describe('identity', () => {
    it('refuses a value create already returned (a singleton), never lending it twice at once', async () => {
      const singleton = { shared: true };
      const pool = track(new Pool<object>({ create: () => singleton, maxSize: 2 }));
      const first = await pool.acquire();
      const err = await pool.acquire().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(PoolCreateError);
      expect((err as Error).message).to.match(/already holds/);
      expect(pool.stats.borrowed).to.equal(1);
      pool.release(first);
    });

    it('ignores the release of a destroyed primitive, as for objects', async () => {
      let next = 0;
      const pool = track(new Pool<number>({ create: () => ++next }));
      const n = await pool.acquire();
      await pool.destroy(n);
      expect(() => pool.release(n)).to.not.throw();
      expect(() => pool.release(n)).to.throw(/did not lend/); // once only
    });

    it('releases a scoped value that is undefined, so close() resolves', async () => {
      let made = 0;
      const pool = new Pool<undefined>({
        create: () => {
          made++;
          return undefined;
        },
        maxSize: 1,
      });
      const scope = pool.scoped();
      await scope.run(async () => {
        expect(await scope.current()).to.equal(undefined);
      });
      expect(pool.stats.borrowed).to.equal(0);
      await pool.close();
      expect(made).to.equal(1);
    });
  });
});
