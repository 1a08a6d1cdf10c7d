import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AutoSyncCache, CacheManager, UnkeyableArgumentsError, memoize, memoized } from '../lib';
import { encodeArgs } from '../lib/memoize/arg-key';
import { deferred, makeTempDir, removeDir, runFixture, useTempManager } from './helpers';

describe('memoize', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  describe('across processes', () => {
    let dir: string;
    beforeEach(() => {
      dir = makeTempDir();
    });
    afterEach(() => removeDir(dir));

    for (const mode of ['sync', 'async'] as const) {
      it(`returns the first run's result in the second without calling the function (${mode})`, async () => {
        const side = path.join(dir, 'calls.txt');
        const first = await runFixture('memo-child.ts', [dir, mode, side]);
        const second = await runFixture('memo-child.ts', [dir, mode, side]);
        expect(first.code, first.stderr).to.equal(0);
        expect(second.code, second.stderr).to.equal(0);
        expect(second.stdout).to.equal(first.stdout);
        expect(JSON.parse(first.stdout).isPromise).to.equal(mode === 'async');
        expect(fs.readFileSync(side, 'utf8')).to.equal('call\n'); // called once in two runs
      });
    }
  });

  describe('keys', () => {
    it('tells apart equal arguments of different types', () => {
      let calls = 0;
      const f = memoize((x: unknown) => `${++calls}:${typeof x}`, { manager });
      const args: unknown[] = [1, '1', 1n, [1], { a: 1 }, new Map([['a', 1]]), new Set([1]), true, null, undefined, -0, new Date(1)];
      const first = args.map((a) => f(a));
      expect(new Set(first).size).to.equal(args.length);
      expect(args.map((a) => f(a))).to.deep.equal(first);
      expect(calls).to.equal(args.length);
    });

    it('treats plain objects with keys in another order as equal', () => {
      expect(encodeArgs([{ a: 1, b: [2] }])).to.equal(encodeArgs([{ b: [2], a: 1 }]));
      expect(encodeArgs(['a,b'])).to.not.equal(encodeArgs(['a', 'b']));
      class M {
        a = 1;
      }
      expect(encodeArgs([new M()])).to.not.equal(encodeArgs([{ a: 1 }]));
    });

    it('recomputes when the source changes, under the same name', () => {
      const one = memoize(function calc(n: number) {
        return n + 1;
      }, { manager });
      const two = memoize(function calc(n: number) {
        return n + 2;
      }, { manager });
      expect(one(1)).to.equal(2);
      expect(two(1)).to.equal(3);
      expect(one.memoizeId).to.not.equal(two.memoizeId);
    });

    it('uses a key option', () => {
      let calls = 0;
      const f = memoize((o: { id: number; noise: number }) => ++calls + o.id * 0, {
        manager,
        key: (o: { id: number }) => o.id,
      });
      f({ id: 1, noise: 1 });
      f({ id: 1, noise: 2 });
      expect(calls).to.equal(1);
    });

    it('throws UnkeyableArgumentsError for a function argument, or calls through', () => {
      const f = memoize((g: () => number) => g(), { manager });
      expect(() => f(() => 1)).to.throw(UnkeyableArgumentsError).with.property('code', 'EUNKEYABLE');
      let calls = 0;
      const h = memoize((g: () => number) => g() + ++calls, { manager, onUnkeyable: 'call' });
      h(() => 1);
      h(() => 1);
      expect(calls).to.equal(2);
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      expect(() => memoize((x: unknown) => x, { manager })(cyclic)).to.throw(UnkeyableArgumentsError);
    });
  });

  describe('sync and async', () => {
    it('keeps a sync function sync', () => {
      const f = memoize((n: number) => n * 2, { manager });
      expect(f(2)).to.equal(4);
      expect(f(2)).to.equal(4);
    });

    it('shares one computation between concurrent equal calls', async () => {
      const gate = deferred<number>();
      let calls = 0;
      const f = memoize(
        (_n: number) => {
          calls++;
          return gate.promise;
        },
        { manager },
      );
      const a = f(1);
      const b = f(1);
      expect(calls).to.equal(1);
      gate.resolve(42);
      expect(await a).to.equal(42);
      expect(await b).to.equal(42);
      expect(await f(1)).to.equal(42);
      expect(calls).to.equal(1);
    });

    it('does not cache a rejection', async () => {
      let calls = 0;
      const f = memoize(
        async (_n: number) => {
          if (++calls === 1) throw new Error('flaky');
          return 'ok';
        },
        { manager },
      );
      let failed = false;
      await f(1).catch(() => (failed = true));
      expect(failed).to.equal(true);
      expect(await f(1)).to.equal('ok');
      expect(calls).to.equal(2);
    });
  });

  describe('#clear()', () => {
    it("drops all of this function's results and no other's", () => {
      let calls = 0;
      const f = memoize((n: number) => n + ++calls, { manager });
      const g = memoize((n: number) => n - ++calls, { manager });
      f(1);
      f(2);
      g(1);
      expect(f.clear()).to.equal(2);
      f(1);
      g(1);
      expect(calls).to.equal(4); // f(1) again; g(1) still cached
    });

    it('drops only results not used within maxAgeMs', async () => {
      const clock = FakeTimers.install({ now: 1_700_000_000_000, toFake: ['Date'] });
      try {
        let calls = 0;
        const f = memoize((n: number) => n + ++calls * 0, { manager });
        f(1);
        clock.tick(3 * 3600_000);
        await null; // time passes between event-loop turns (hits read the clock once a turn)
        f(2);
        expect(f.clear({ maxAgeMs: 3600_000 })).to.equal(1);
        f(2);
        f(1);
        expect(calls).to.equal(3); // f(1) dropped and recomputed, f(2) kept
        clock.tick(2 * 3600_000);
        await null;
        f(1); // a hit refreshes its last-used time
        expect(f.clear({ maxAgeMs: 3600_000 })).to.equal(1); // only f(2) is stale now
      } finally {
        clock.uninstall();
      }
    });

    it('rejects a bad maxAgeMs', () => {
      const f = memoize((n: number) => n, { manager });
      expect(() => f.clear({ maxAgeMs: -1 })).to.throw(TypeError, /maxAgeMs/);
    });
  });

  describe('the in-memory index over the shared cache', () => {
    // Hits are served from a per-function index; these prove it never outlives the cache's truth.
    const setup = () => {
      let calls = 0;
      const f = memoize((n: number) => `${n}:${++calls}`, { manager, cacheName: 'idx' });
      f(1);
      expect(f(1)).to.equal('1:1'); // served from the index
      const cache = manager.getCache<string, [unknown, number, number]>('idx');
      const key = [...cache.keys()][0] as string;
      return { f, cache, key, calls: () => calls };
    };

    it('recomputes after the entry is deleted from the cache directly', () => {
      const { f, cache, key, calls } = setup();
      cache.delete(key);
      expect(f(1)).to.equal('1:2');
      expect(calls()).to.equal(2);
    });

    it('returns a value written into the cache directly', () => {
      const { f, cache, key } = setup();
      cache.set(key, ['planted', Date.now(), 0]);
      expect(f(1)).to.equal('planted');
    });

    it('recomputes after the cache is cleared', () => {
      const { f, cache } = setup();
      cache.clear();
      expect(f(1)).to.equal('1:2');
    });

    it('follows a reload from the saved state', async () => {
      const { f, cache, key } = setup();
      await cache.save();
      cache.set(key, ['unsaved', Date.now(), 0]);
      expect(f(1)).to.equal('unsaved');
      await cache.load();
      expect(f(1)).to.equal('1:1');
    });

    it('follows a cache that was deregistered and registered anew under the same name', async () => {
      const { f } = setup();
      await manager.deregisterCache('idx');
      const fresh = await manager.registerCache<string, unknown>('idx', new Map());
      expect(f(1)).to.equal('1:2');
      expect(f(1)).to.equal('1:2');
      expect(fresh.size).to.equal(1); // the result went to the registered cache, not the old one
    });

    it('stays true for a recursive function, whose calls store results inside each other', () => {
      let calls = 0;
      const fib: (n: number) => number = memoize(
        (n: number): number => {
          calls++;
          return n < 2 ? n : fib(n - 1) + fib(n - 2);
        },
        { manager, cacheName: 'idx' },
      );
      expect(fib(60)).to.equal(1548008755920);
      expect(calls).to.equal(61); // each n computed once
      expect(fib(59)).to.equal(956722026041);
      expect(calls).to.equal(61);
    });

    it("stays true while other functions' results are added to the shared cache", () => {
      const { f, calls } = setup();
      const g = memoize((n: number) => -n, { manager, cacheName: 'idx' });
      for (let i = 0; i < 5; i++) {
        g(i);
        expect(f(1)).to.equal('1:1');
      }
      expect(calls()).to.equal(1);
    });
  });

  describe('option: dependsOn', () => {
    it('drops results when an input cache is invalidated', async () => {
      const inputs = await manager.registerCache<string, number>('inputs', { rate: 2 });
      await inputs.save();
      let calls = 0;
      const convert = memoize(
        (amount: number) => {
          calls++;
          return amount * (inputs.get('rate') as number);
        },
        { manager, dependsOn: ['inputs'] },
      );
      expect(convert(10)).to.equal(20);
      expect(convert(10)).to.equal(20);
      inputs.set('rate', 3);
      await inputs.save();
      await manager.invalidateCache('inputs');
      expect(convert(10)).to.equal(30);
      expect(calls).to.equal(2);
      convert.dispose();
    });

    it('drops results when a parent of the input is invalidated (cascade)', async () => {
      await manager.registerCache('raw', { a: 1 });
      await manager.registerCache('cleaned', { a: 1 });
      await manager.registerDependentCache('raw', 'cleaned');
      let calls = 0;
      const report = memoize(() => ++calls, { manager, dependsOn: ['cleaned'] });
      report();
      await manager.invalidateCache('raw');
      report();
      expect(calls).to.equal(2);
      report.dispose();
    });
  });

  describe('option: livesync', () => {
    /** What a second manager on the same directory (as another process would) reads of cache `live`. */
    async function savedElsewhere(): Promise<number[]> {
      const other = new CacheManager(manager.name, { baseDirectory: path.dirname(manager.cacheDirectory) });
      try {
        const decoded = await other.store.read('live', 'throw', () => undefined);
        return [...new Map(decoded).values()].map((v) => (v as [number])[0]);
      } finally {
        await other.close();
      }
    }

    /** Resolves on the manager's next `save` of `name`, or rejects after `ms` of real time. */
    function nextSave(name: string, ms: number): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          manager.off('save', onSave);
          reject(new Error(`no save of ${name} within ${ms} ms`));
        }, ms);
        const onSave = (e: { cache: string }) => {
          if (e.cache !== name) return;
          clearTimeout(timer);
          manager.off('save', onSave);
          resolve();
        };
        manager.on('save', onSave);
      });
    }

    it('saves every new result by itself, with no call to save()', async () => {
      const cache = await AutoSyncCache.open<string, unknown>('live', { manager }); // default windows: a lone edit waits 300 s
      let saveCalls = 0;
      const save = cache.save.bind(cache);
      cache.save = (...args) => (saveCalls++, save(...args));
      const f = memoize((n: number) => n * n, { manager, cacheName: 'live', livesync: true });
      const saved = nextSave('live', 5000);
      f(3);
      expect(saveCalls).to.equal(1); // memoize started the save, nobody else
      await saved;
      expect(await savedElsewhere()).to.deep.equal([9]);
      f(4);
      await nextSave('live', 5000);
      expect((await savedElsewhere()).sort((a, b) => a - b)).to.deep.equal([9, 16]);
      f(3); // a hit: nothing new to save
      expect(saveCalls).to.equal(2);
    });

    it('without livesync, leaves a new result unsaved until save()', async () => {
      const cache = await AutoSyncCache.open<string, unknown>('live', { manager });
      let saveCalls = 0;
      const save = cache.save.bind(cache);
      cache.save = (...args) => (saveCalls++, save(...args));
      const f = memoize((n: number) => n * n, { manager, cacheName: 'live' });
      f(3);
      expect(saveCalls).to.equal(0);
      expect(cache.dirtyEdits).to.be.greaterThan(0);
      expect(await savedElsewhere()).to.deep.equal([]); // real I/O has run meanwhile: still nothing on disk
      expect(saveCalls).to.equal(0);
      await cache.save();
      expect(await savedElsewhere()).to.deep.equal([9]);
    });
  });

  describe('@memoized', () => {
    it('memoizes a method, keyed by the instance state and the arguments', () => {
      let calls = 0;
      const m = manager;
      class Pricer {
        constructor(readonly rate: number) {}
        @memoized({ manager: m })
        price(amount: number): number {
          calls++;
          return amount * this.rate;
        }
      }
      const a = new Pricer(2);
      const b = new Pricer(3);
      expect(a.price(10)).to.equal(20);
      expect(b.price(10)).to.equal(30);
      expect(new Pricer(2).price(10)).to.equal(20); // same state: a hit
      expect(calls).to.equal(2);
    });
  });
});
