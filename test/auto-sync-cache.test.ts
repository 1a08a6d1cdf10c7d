import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AutoSyncCache, CacheHookError, CacheManager, type TimeCheck } from '../lib';
import { FIXTURES, deferred, entriesOf, makeTempDir, removeDir, runFixture, useTempManager } from './helpers';

const S = 1000;
const T0 = 1_000_000 * S;
// CacheMan's build_fast_sync_cache: TimeCount(1, 2), TimeCount(5, 10), buckets of 1 s.
const FAST: TimeCheck[] = [
  { seconds: 1, count: 2 },
  { seconds: 5, count: 10 },
];

/** Lets real I/O (of saves) run, event-loop turn by turn, until `cond` holds (or 5 s of real time pass). */
async function waitFor(cond: () => boolean): Promise<void> {
  const deadline = process.hrtime.bigint() + 5_000_000_000n; // not faked by the tests here
  while (!cond() && process.hrtime.bigint() < deadline) await new Promise((r) => setImmediate(r));
}

describe('AutoSyncCache', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  describe('with an injected clock (CacheMan autosync_test)', () => {
    let now: number;
    const clock = () => now;
    beforeEach(() => {
      now = T0;
    });
    const fastCache = () =>
      AutoSyncCache.open<unknown, unknown>('auto', { manager, timeChecks: FAST, bucketSeconds: 1, clock });

    it('does the basic cache actions', async () => {
      const cache = await AutoSyncCache.open<string, string>('basics', { manager, clock });
      cache.set('foo', 'bar');
      expect(cache.get('foo')).to.equal('bar');
      await cache.save();
      expect(fs.existsSync(cache.path)).to.equal(true);
      await cache.load();
      expect(cache.get('foo')).to.equal('bar');
      expect(cache.has('foo')).to.equal(true);
      expect(cache.has('foo2')).to.equal(false);
      await cache.deleteSavedContent();
      await cache.load();
      expect(cache.hasContents).to.equal(false);
      await cache.loadOrBuild();
      expect(entriesOf(cache)).to.deep.equal({});
    });

    it('saves by the time windows and not otherwise', async () => {
      const cache = await fastCache();
      cache.set('not_enough', true);
      await cache.load(); // a load queued after any background save
      expect(entriesOf(cache)).to.deep.equal({});
      expect(cache.window.counts).to.deep.equal([0, 0, 0, 0, 0]); // cleared on load

      cache.set('first', 1);
      cache.set('second', 2);
      await cache.load();
      expect(entriesOf(cache)).to.deep.equal({ first: 1, second: 2 });

      cache.set('first', 'overwritten');
      now += 2 * S;
      cache.set('second', 'overwritten');
      await cache.load();
      expect(entriesOf(cache)).to.deep.equal({ first: 1, second: 2 }); // 1 + 1 across bands: no save

      await cache.invalidateAndRebuild();
      now += 2 * S;
      for (let i = 0; i < 10; i++) cache.set(i, i);
      await cache.load();
      expect(cache.size).to.equal(10); // the first band triggered
    });

    it('resets the window on load, save, build and deleteSavedContent', async () => {
      const cache = await fastCache();
      for (const op of ['load', 'save', 'build', 'deleteSavedContent'] as const) {
        now += 10 * S;
        cache.set('x', op);
        expect(cache.window.isEmpty).to.equal(true); // one edit: still only counted, not recorded
        now += 10 * S;
        // A lone edit opens a batch; flush it into the window through a second, distant edit.
        cache.set('y', op);
        expect(cache.window.isEmpty).to.equal(false);
        await cache[op]();
        expect(cache.window.counts.every((c) => c === 0), op).to.equal(true);
      }
    });

    it('reads the clock per batch, not per edit', async () => {
      let reads = 0;
      const counting = () => {
        reads++;
        return now;
      };
      const cache = await AutoSyncCache.open('reads', { manager, clock: counting });
      reads = 0;
      for (let i = 0; i < 5000; i++) cache.set(i, i);
      expect(reads).to.be.lessThan(5);
    });

    it('saves after 10,000 edits within 60 s by default', async () => {
      const cache = await AutoSyncCache.open<number, number>('bulk', { manager, clock });
      const saved = once(manager, 'save');
      for (let i = 0; i < 9999; i++) cache.set(i, i);
      expect(cache.dirtyEdits).to.equal(9999);
      cache.set(9999, 9999);
      await saved;
      const decoded = await manager.store.read('bulk', 'throw', () => undefined);
      expect(new Map(decoded).size).to.equal(10000);
    });

    it('keeps edits made during a save dirty and counted', async () => {
      // A saver that holds the second save open until the test has edited during it.
      let hold = false;
      const writing = deferred();
      const release = deferred();
      const cache = await AutoSyncCache.open<number, number>('during', {
        manager,
        clock,
        contents: {},
        saver: async () => {
          if (!hold) return;
          writing.resolve();
          await release.promise;
        },
      });
      cache.set(1, 1);
      const saving = cache.save();
      cache.set(2, 2); // the save has not read the map yet: it includes this
      await saving;
      expect(cache.dirtyEdits).to.equal(0);
      expect(cache.window.isEmpty).to.equal(true);
      hold = true;
      cache.set(10, 10);
      const held = cache.save();
      await writing.promise; // the save is under way, past reading the map
      cache.set(3, 3);
      release.resolve();
      await held;
      expect(cache.dirtyEdits).to.equal(1); // 3 came too late for that save
      expect(cache.window.isEmpty).to.equal(false); // and is back in the window, so autosync still sees it
      expect(cache.timerActive).to.equal(true);
    });

    it('rejects a clock that is not a function', () => {
      expect(() => new AutoSyncCache('bad', { manager, clock: 5 as unknown as () => number })).to.throw(
        TypeError,
        /clock/,
      );
    });
  });

  describe('timers (fake)', () => {
    let clock: ReturnType<typeof FakeTimers.install>;
    beforeEach(() => {
      // performance too: the windows run on the monotonic clock.
      clock = FakeTimers.install({
        now: T0,
        toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
      });
    });
    afterEach(() => {
      clock.uninstall();
    });

    /** Advances fake time by `ms`, letting real I/O of saves finish along the way. */
    async function advance(ms: number): Promise<void> {
      for (let t = 0; t < ms; t += 5 * S) {
        await clock.tickAsync(Math.min(5 * S, ms - t));
        await new Promise((r) => setImmediate(r));
      }
    }

    it('saves a lone edit once its band is reached, with no other edit', async () => {
      const cache = await AutoSyncCache.open<string, number>('lone', { manager });
      let saves = 0;
      manager.on('save', () => saves++);
      cache.set('k', 1);
      expect(cache.timerActive).to.equal(true);
      await advance(285 * S);
      expect(saves).to.equal(0); // 1 edit needs to be 300 s old
      await advance(45 * S);
      await waitFor(() => saves > 0);
      expect(saves).to.equal(1);
      expect(cache.dirtyEdits).to.equal(0);
      expect(cache.timerActive).to.equal(false); // clean again: no timer left
      expect(clock.countTimers()).to.equal(0);
    });

    it('saves 10 edits once they are 60 s old', async () => {
      const cache = await AutoSyncCache.open<number, number>('ten', { manager });
      let saves = 0;
      manager.on('save', () => saves++);
      for (let i = 0; i < 10; i++) cache.set(i, i);
      await advance(45 * S);
      expect(saves).to.equal(0); // still within the first 60 s, and 10 < 10,000
      await advance(45 * S);
      await waitFor(() => saves > 0);
      expect(saves).to.equal(1);
      expect(cache.dirtyEdits).to.equal(0);
    });

    it('reports a failed background save, keeps the edits, and retries on a later tick', async () => {
      const errors: Error[] = [];
      manager.on('error', (e) => errors.push(e));
      let fail = false;
      const stored: Array<Map<unknown, unknown>> = [];
      const cache = await AutoSyncCache.open<string, number>('flaky', {
        manager,
        timeChecks: [{ seconds: 30, count: 1 }],
        bucketSeconds: 5,
        saver: async (_name, contents) => {
          if (fail) throw new Error('disk unplugged');
          stored.push(contents);
        },
      });
      stored.length = 0;
      fail = true;
      cache.set('k', 1); // the 30-s band needs 1 edit: saved right away, and it fails
      await waitFor(() => errors.length > 0);
      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(CacheHookError);
      expect(cache.dirtyEdits).to.equal(1);
      expect(cache.get('k')).to.equal(1);
      fail = false;
      await advance(10 * S);
      await waitFor(() => stored.length > 0);
      expect(stored).to.have.length(1);
      expect(entriesOf(stored[0] as Map<unknown, unknown>)).to.deep.equal({ k: 1 });
      expect(cache.dirtyEdits).to.equal(0);
    });

    it('stops every timer on close, after saving', async () => {
      const cache = await AutoSyncCache.open<string, number>('closing', { manager });
      cache.set('k', 1);
      expect(clock.countTimers()).to.be.greaterThan(0);
      await manager.close();
      expect(cache.timerActive).to.equal(false);
      expect(clock.countTimers()).to.equal(0);
      const decoded = await manager.store.read('closing', 'throw', () => undefined);
      expect(decoded && Object.fromEntries(decoded)).to.deep.equal({ k: 1 });
    });
  });

  describe('wall-clock steps (issue 31): windows run on the monotonic clock', () => {
    // Date and performance faked apart: setSystemTime steps Date alone, as NTP or a restored VM
    // steps the wall clock; tickAsync moves both, and the timers, as real time passing does.
    let clock: ReturnType<typeof FakeTimers.install>;
    beforeEach(() => {
      clock = FakeTimers.install({
        now: T0,
        toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'],
      });
    });
    afterEach(() => {
      clock.uninstall();
    });
    const DAY = 86_400 * S;
    const YEAR = 365 * DAY;

    async function advance(ms: number): Promise<void> {
      for (let t = 0; t < ms; t += 5 * S) {
        await clock.tickAsync(Math.min(5 * S, ms - t));
        await new Promise((r) => setImmediate(r));
      }
    }

    /** Opens a cache with the default windows (a lone edit is due at 300 s) and counts its saves. */
    async function lone(name: string, options: { clock?: () => number } = {}) {
      const cache = await AutoSyncCache.open<string, number>(name, { manager, ...options });
      const counter = { saves: 0 };
      manager.on('save', (e) => {
        if (e.cache === name) counter.saves++;
      });
      return { cache, counter };
    }

    /** A lone edit made at monotonic 0 is saved between 300 s (its band) and 315 s (one bucket later). */
    async function expectSavedOnTime(cache: AutoSyncCache<string, number>, counter: { saves: number }, elapsed: number) {
      await advance(285 * S - elapsed);
      expect(counter.saves, 'saved before its band').to.equal(0);
      await advance(45 * S);
      await waitFor(() => counter.saves > 0);
      expect(counter.saves, 'not saved once its band was reached').to.equal(1);
      expect(cache.dirtyEdits).to.equal(0);
      expect(cache.timerActive).to.equal(false);
    }

    it('saves a lone edit on time when the wall clock steps back a day after it', async () => {
      const { cache, counter } = await lone('back');
      cache.set('k', 1);
      await advance(20 * S);
      clock.setSystemTime(Date.now() - DAY);
      await expectSavedOnTime(cache, counter, 20 * S);
    });

    it('saves on time when the wall clock steps back a day between two edits', async () => {
      const { cache, counter } = await lone('between');
      cache.set('a', 1);
      await advance(20 * S);
      clock.setSystemTime(Date.now() - DAY);
      cache.set('b', 2);
      await expectSavedOnTime(cache, counter, 20 * S);
      expect(entriesOf((await manager.store.read('between', 'throw', () => undefined)) as unknown as Map<unknown, unknown>)).to.deep.equal({ a: 1, b: 2 });
    });

    it('saves a pending edit on time when the wall clock steps forward a year (suspend/resume)', async () => {
      const { cache, counter } = await lone('forward');
      cache.set('k', 1);
      await advance(20 * S);
      clock.setSystemTime(Date.now() + YEAR);
      await expectSavedOnTime(cache, counter, 20 * S);
    });

    it('saves an edit that aged past every band unsaved (a stall longer than 900 s) at the next tick', async () => {
      const { cache, counter } = await lone('stalled');
      cache.set('k', 1);
      await advance(20 * S);
      clock.jump(1200 * S); // timers fire at most once: the process was stopped or blocked
      await new Promise((r) => setImmediate(r));
      await advance(15 * S);
      await waitFor(() => counter.saves > 0);
      expect(counter.saves).to.equal(1);
      expect(cache.dirtyEdits).to.equal(0);
    });

    describe('with a clock option that is a stepping wall clock (clock: () => Date.now())', () => {
      it('absorbs a step back: the edit is saved on time, measured from the edit', async () => {
        const { cache, counter } = await lone('given-back', { clock: () => Date.now() });
        cache.set('k', 1);
        await advance(20 * S);
        clock.setSystemTime(Date.now() - DAY);
        await expectSavedOnTime(cache, counter, 20 * S);
      });

      it('saves a pending edit early, not never, after a step forward', async () => {
        const { cache, counter } = await lone('given-forward', { clock: () => Date.now() });
        cache.set('k', 1);
        await advance(20 * S);
        clock.setSystemTime(Date.now() + YEAR);
        await advance(15 * S); // the next tick sees the edit a year old: past every band
        await waitFor(() => counter.saves > 0);
        expect(counter.saves).to.equal(1);
        expect(cache.dirtyEdits).to.equal(0);
      });
    });
  });

  describe('in a child process', () => {
    let dir: string;
    beforeEach(() => {
      dir = makeTempDir();
    });
    afterEach(() => {
      removeDir(dir);
    });

    for (const [step, shiftMs] of [
      ['back a day', -86_400_000],
      ['forward a year', 365 * 86_400_000],
    ] as const) {
      it(`saves a lone edit within seconds when the wall clock steps ${step} after it, so a SIGKILL then loses nothing`, async function () {
        this.timeout(20000);
        const child = spawn(
          process.execPath,
          ['-r', path.join(FIXTURES, 'shift-date.js'), '-r', 'ts-node/register/transpile-only', path.join(FIXTURES, 'autosync-clock-step.ts'), dir, 'edit'],
          { env: { ...process.env, DEPCACHE_TEST_DATE_SHIFT_MS: String(shiftMs) }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        const closed = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
        let out = '';
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        const printed = (word: string) =>
          new Promise<void>((resolve, reject) => {
            const onData = (d: Buffer) => {
              out += d.toString();
              if (out.includes(word)) resolve();
            };
            if (out.includes(word)) return resolve();
            child.stdout.on('data', onData);
            void closed.then(() => reject(new Error(`child ended before '${word}': ${out} ${err}`)));
          });
        try {
          await printed('edited');
          child.kill('SIGUSR2'); // the wall clock steps, in the child only, right after the edit
          await printed('shifted');
          const stepped = performance.now();
          // From this process: poll the file on disk for the edit, as a reader elsewhere would.
          let saved: unknown;
          while (saved === undefined && performance.now() - stepped < 6000) {
            const reader = new CacheManager('clock', { baseDirectory: dir });
            const decoded = await reader.store.read('auto', 'throw', () => undefined);
            await reader.close();
            saved = decoded ? new Map(decoded).get('k') : undefined;
            if (saved === undefined) await new Promise((r) => setTimeout(r, 100));
          }
          expect(saved, `not saved within 6 s of the step; child stderr: ${err}`).to.equal('edited');
        } finally {
          child.kill('SIGKILL'); // no exit flush: what is on disk is what autosync wrote
        }
        expect(await closed).to.equal('SIGKILL');
        const fresh = await runFixture('autosync-clock-step.ts', [dir, 'read']);
        expect(fresh.code, fresh.stderr).to.equal(0);
        expect(JSON.parse(fresh.stdout)).to.deep.equal({ k: 'edited', dirty: 0 });
      });
    }

    it('saves a lone edit by itself while the process idles (short windows)', async () => {
      const r = await runFixture('exit-flush.ts', [dir, 'autosave']);
      expect(r.signal, r.stderr).to.equal('SIGKILL'); // it killed itself: no exit flush ran
      expect(JSON.parse(r.stdout)).to.deep.equal({ dirty: 0, rewritten: true });
    });
  });
});
