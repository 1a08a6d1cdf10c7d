import { expect } from 'chai';
import { Pool, PoolClosedError, PoolTimeoutError } from '../lib';
import { assertRejects, runFixture } from './helpers';

/** Runs test/fixtures/pool-end.ts to its end, and how long it took. */
async function script(how: string) {
  const started = Date.now();
  const ended = await runFixture('pool-end.ts', [how], { timeoutMs: 20_000 });
  return { ...ended, ms: Date.now() - started };
}

describe('Pool at the end of a script (child processes, issue 34)', function () {
  this.timeout(60_000);

  for (const how of ['create-hangs', 'held'] as const) {
    it(`${how}: a pending acquire with acquireTimeoutMs keeps the script alive until it times out (EPOOL_TIMEOUT)`, async () => {
      const ended = await script(how);
      expect(ended.signal, ended.stderr).to.equal(null);
      expect(ended.stdout, ended.stderr).to.contain('code EPOOL_TIMEOUT');
      expect(ended.stdout).to.contain('end');
      expect(ended.code, ended.stderr).to.equal(0);
    });
  }

  it('create-timeout: an acquire waiting on a create with createTimeoutMs sees the create fail (EPOOL_CREATE)', async () => {
    const ended = await script('create-timeout');
    expect(ended.stdout, ended.stderr).to.contain('code EPOOL_CREATE');
    expect(ended.code, ended.stderr).to.equal(0);
  });

  it('served: a waiter served before its deadline leaves no timer holding the script', async () => {
    const ended = await script('served');
    expect(ended.stdout, ended.stderr).to.contain('got 1');
    expect(ended.code, ended.stderr).to.equal(0);
    expect(ended.ms, 'not held for the 10 s acquire timeout').to.be.lessThan(8_000);
  });

  it('closed: close() clears every timer, and the script exits promptly', async () => {
    const ended = await script('closed');
    expect(ended.stdout, ended.stderr).to.contain('closed');
    expect(ended.code, ended.stderr).to.equal(0);
    expect(ended.ms, 'no leaked handle (the timers are 60 s)').to.be.lessThan(8_000);
  });
});

/** Timers that hold the event loop open now (unref'd ones are not listed). */
const heldTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

// Mocha's own timeout timer of a test shows up once the test first yields: yield before counting.
const settle = () => new Promise((resolve) => setTimeout(resolve, 1));

describe('Pool timers hold the process only while an acquire waits on them (in-process, issue 34)', () => {
  it('the deadline timer is held while a timed acquire waits, and cleared when it is served', async () => {
    await settle();
    const pool = new Pool<object>({ create: () => ({}), maxSize: 1, acquireTimeoutMs: 10_000 });
    const first = await pool.acquire();
    const before = heldTimers();
    const waiting = pool.acquire();
    expect(heldTimers(), 'held while it waits').to.equal(before + 1);
    pool.release(first);
    expect(await waiting).to.equal(first);
    expect(heldTimers(), 'served: no timer left for the 10 s deadline').to.equal(before);
    pool.release(first);
    await pool.close();
  });

  it('without acquireTimeoutMs, a waiting acquire holds no timer', async () => {
    await settle();
    const pool = new Pool<object>({ create: () => ({}), maxSize: 1 });
    const first = await pool.acquire();
    const before = heldTimers();
    const waiting = pool.acquire();
    expect(heldTimers()).to.equal(before);
    const closing = pool.close();
    await assertRejects(waiting, PoolClosedError, 'EPOOL_CLOSED');
    pool.release(first);
    await closing;
  });

  it("a create's timeout is held while an acquire waits on it, never for a background create, and close() clears both", async () => {
    await settle();
    const never = () => new Promise<object>(() => undefined);
    const before = heldTimers();
    const background = new Pool<object>({ create: never, minSize: 1, createTimeoutMs: 10_000 });
    expect(heldTimers(), 'a minSize create holds nothing').to.equal(before);
    const pool = new Pool<object>({ create: never, createTimeoutMs: 10_000, acquireTimeoutMs: 10_000 });
    const waiting = pool.acquire();
    expect(heldTimers(), 'the create timeout and the deadline').to.equal(before + 2);
    await pool.close();
    await assertRejects(waiting, PoolClosedError, 'EPOOL_CLOSED');
    expect(heldTimers(), 'closed: nothing left').to.equal(before);
    await background.close();
  });

  it('a timed acquire that times out leaves no timer behind', async () => {
    await settle();
    const pool = new Pool<object>({ create: () => new Promise<object>(() => undefined), acquireTimeoutMs: 30 });
    const before = heldTimers();
    await assertRejects(pool.acquire(), PoolTimeoutError, 'EPOOL_TIMEOUT');
    expect(heldTimers()).to.equal(before);
    await pool.close();
  });
});
