import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { AutoSyncCache, CacheHookError, CacheManager, type TimeCheck } from '../lib';
import { deferred, entriesOf, makeTempDir, removeDir, runFixture, useTempManager } from './helpers';

const S = 1000;
const T0 = 1_000_000 * S;
// CacheMan's build_fast_sync_cache: TimeCount(1, 2), TimeCount(5, 10), buckets of 1 s.
const FAST: TimeCheck[] = [
  { seconds: 1, count: 2 },
  { seconds: 5, count: 10 },
];

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
      clock = FakeTimers.install({
        now: T0,
        toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
      });
    });
    afterEach(() => {
      clock.uninstall();
    });

    /** Waits (in real time, at most 5 s) for real I/O until `cond` holds. */
    async function waitFor(cond: () => boolean): Promise<void> {
      const deadline = performance.now() + 5000;
      while (!cond() && performance.now() < deadline) await new Promise((r) => setImmediate(r));
    }

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

  describe('in a child process', () => {
    let dir: string;
    beforeEach(() => {
      dir = makeTempDir();
    });
    afterEach(() => {
      removeDir(dir);
    });

    it('saves a lone edit by itself while the process idles (short windows)', async () => {
      const r = await runFixture('exit-flush.ts', [dir, 'autosave']);
      expect(r.signal, r.stderr).to.equal('SIGKILL'); // it killed itself: no exit flush ran
      expect(JSON.parse(r.stdout)).to.deep.equal({ dirty: 0, rewritten: true });
    });
  });
});
