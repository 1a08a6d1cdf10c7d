import { expect } from 'chai';
import {
  AutoSyncCache,
  CacheConflictError,
  CacheManager,
  CacheMap,
  CsvCache,
  JsonCache,
  LazyCache,
  ManagerClosedError,
  NonPersistentCache,
  PersistentCache,
  ReentrantCallError,
} from '../lib';
import { assertRejects, entriesOf, useTempManager } from './helpers';

describe('CacheMan fidelity', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  describe('open() with contents', () => {
    const classes = { CacheMap, PersistentCache, AutoSyncCache, NonPersistentCache, LazyCache, JsonCache, CsvCache };
    for (const [label, cls] of Object.entries(classes)) {
      it(`keeps the given contents as unsaved edits (${label})`, async () => {
        let built = 0;
        const cache = await (cls as typeof PersistentCache).open<string, string>('given', {
          manager,
          contents: { a: 'x' },
          builder: () => {
            built++;
            return { b: 'built' };
          },
        });
        expect(entriesOf(cache)).to.deep.equal({ a: 'x' });
        expect(built).to.equal(0);
        expect(cache.dirtyEdits).to.be.greaterThan(0);
      });
    }

    it('loads or builds when no contents are given', async () => {
      const cache = await PersistentCache.open<string, string>('built', { manager, builder: () => ({ b: 'built' }) });
      expect(entriesOf(cache)).to.deep.equal({ b: 'built' });
    });
  });

  describe('open() of a registered name', () => {
    it('resolves the registered cache of the same class (await using, twice)', async () => {
      for (let run = 0; run < 2; run++) {
        await using cache = await PersistentCache.open<string, number>('scores', { manager });
        cache.set('run', run);
      }
      const again = await PersistentCache.open<string, number>('scores', { manager });
      expect(again).to.equal(manager.getCache('scores'));
      expect(again.get('run')).to.equal(1);
      expect(again.dirtyEdits).to.equal(0); // asyncDispose saved
    });

    it('refuses another class with its own code, saying what is registered and how to replace it', async () => {
      await AutoSyncCache.open('events', { manager });
      const err = await assertRejects(PersistentCache.open('events', { manager }), CacheConflictError, 'EALREADY_REGISTERED');
      expect(err.message).to.match(/^events: already registered .* as a AutoSyncCache, not a PersistentCache/);
      expect(err.message).to.contain('deregisterCache("events")');
      expect(() => new AutoSyncCache('events', { manager })).to.throw(CacheConflictError, /AutoSyncCache\.open\("events"\)/);
    });
  });

  describe('re-entrant hooks', () => {
    it('a deleter that retrieves its own cache (without contents) gets it at once', async () => {
      let seen: unknown;
      const cache = new PersistentCache('self', {
        manager,
        deleter: async (name) => {
          seen = await manager.retrieveCache(name);
        },
      });
      await cache.deleteSavedContent();
      expect(seen).to.equal(cache);
    });

    const reentrant: Record<string, (c: AnyCache) => Promise<unknown>> = {
      'load()': (c) => c.load(),
      'save()': (c) => c.save(),
      'loadOrBuild()': (c) => c.loadOrBuild(),
      'invalidate()': (c) => c.invalidate(),
    };
    type AnyCache = PersistentCache<string, number>;
    for (const [call, fn] of Object.entries(reentrant)) {
      it(`a saver awaiting its own cache's ${call} fails at once instead of hanging`, async () => {
        const cache = new PersistentCache<string, number>('loop', {
          manager,
          contents: { a: 1 },
          saver: async () => {
            await fn(cache);
          },
        });
        const err = await assertRejects(cache.save(), ReentrantCallError, 'EREENTRANT');
        expect(err.message).to.match(/^loop: /);
        // The queue is free again: later operations run.
        cache.saver = null;
        expect(await cache.save()).to.equal(false);
        expect(await cache.load()).to.equal(false); // ran: nothing was ever saved
      });
    }

    it('a cycle through another cache fails at once too (A saves → B loads → A saves)', async () => {
      const b = new PersistentCache<string, number>('b', { manager, contents: {} });
      const a = new PersistentCache<string, number>('a', { manager, contents: { x: 1 }, saver: async () => void (await b.load()) });
      b.loader = async () => {
        await a.save();
        return new Map();
      };
      const err = await assertRejects(a.save(), ReentrantCallError, 'EREENTRANT');
      expect(err.cacheName).to.equal('a');
    });

    it('a timer armed inside an operation may still use the cache later', async () => {
      const cache = new PersistentCache<string, number>('later', { manager, contents: { a: 1 } });
      let later: Promise<unknown> | undefined;
      cache.saver = () => {
        later = new Promise((resolve) => setTimeout(resolve, 5)).then(() => cache.load());
      };
      await cache.save();
      expect(await later).to.equal(false); // ran (nothing to load), did not fail as re-entrant
    });
  });

  describe('after manager.close()', () => {
    it('refuses writes with ManagerClosedError naming the cache; reads keep working', async () => {
      const cache = await PersistentCache.open<string, number>('closing', { manager, contents: { a: 1 } });
      const missing = new PersistentCache<string, number>('empty', { manager });
      await manager.close();
      expect(cache.get('a')).to.equal(1);
      expect([...cache.keys()]).to.deep.equal(['a']);
      for (const write of [() => cache.set('b', 2), () => cache.delete('a'), () => cache.clear()]) {
        expect(write).to.throw(ManagerClosedError, /^closing: cannot write/);
      }
      expect(() => missing.set('x', 1)).to.throw(ManagerClosedError, /^empty: /);
      expect(cache.size).to.equal(1);
    });
  });

  describe('options are checked at construction', () => {
    const cases: Array<[string, () => unknown, RegExp]> = [
      ['validator: true', () => new PersistentCache('o', { manager, validator: true as never }), /^o: validator: expected a function or null, got true \(boolean\)/],
      ['loader: a file name', () => new PersistentCache('o', { manager, loader: 'file.json' as never }), /^o: loader: expected a function or null, got "file.json" \(string\)/],
      ['a typo', () => new PersistentCache('o', { manager, postprocessor: () => undefined } as never), /unknown option 'postprocessor': did you mean 'postProcessor'\?/],
      ["CacheMan's async", () => new AutoSyncCache('o', { manager, async: true } as never), /unknown option 'async': there is no async option/],
      ["CacheMan's async_timeout", () => new AutoSyncCache('o', { manager, async_timeout: 5 } as never), /unknown option 'async_timeout'/],
      ["CacheMan's snake_case", () => new PersistentCache('o', { manager, pre_processor: () => undefined } as never), /use 'preProcessor'/],
      ['a manager for options', () => new PersistentCache('o', manager as never), /options: expected a plain options object, got a CacheManager; pass the manager as \{ manager \}/],
      ['manager: a string', () => new PersistentCache('o', { manager: 'etl' as never }), /manager: expected a CacheManager, got "etl"/],
      ['saveOnBlank: "no"', () => new PersistentCache('o', { manager, saveOnBlank: 'no' as never }), /saveOnBlank: expected true or false/],
      ['dependents: a string', () => new PersistentCache('o', { manager, dependents: 'child' as never }), /dependents: expected an iterable/],
      ['rowReader: an array', () => new CsvCache('o', { manager, rowReader: [] as never }), /rowReader: expected a function or null/],
      ['a manager option typo', () => new CacheManager('m', { baseDir: '/tmp' } as never), /unknown option 'baseDir': did you mean 'baseDirectory'\?/],
    ];
    for (const [label, make, message] of cases) {
      it(`throws a TypeError naming the option for ${label}`, () => {
        expect(make).to.throw(TypeError, message);
        expect(manager.cacheRegistered('o')).to.equal(false);
      });
    }

    it('rejects open() given a manager instead of options', async () => {
      let caught: unknown;
      await PersistentCache.open('o', manager as never).catch((e: unknown) => (caught = e));
      expect(caught).to.be.instanceOf(TypeError);
    });

    it('lets a user subclass take options of its own', () => {
      class Tagged extends PersistentCache<string, number> {
        constructor(name: string, readonly options: { manager: CacheManager; tag: string }) {
          super(name, options as never);
        }
      }
      expect(new Tagged('t', { manager, tag: 'x' }).options.tag).to.equal('x');
    });
  });
});
