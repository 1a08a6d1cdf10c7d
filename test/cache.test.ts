import { expect } from 'chai';
import * as fs from 'node:fs';
import {
  CacheContentsMissingError,
  CacheHookError,
  CacheManager,
  CacheMap,
  CacheNotFoundError,
  LazyCache,
  NonPersistentCache,
  PersistentCache,
} from '../lib';
import { assertRejects, deferred, entriesOf, useTempManager } from './helpers';

// Ports of CacheMan's tests/cacher_tests.py, one `it` per scenario, plus what depcache adds (README: Caches, Lifecycle).
describe('CacheManager (CacheMan scenarios)', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  const fileOf = (name: string) => manager.store.pathFor(name);
  const crasher = () => {
    throw new Error('crash');
  };
  async function registerCrashers(name: string): Promise<void> {
    const cache = manager.getCache(name);
    cache.loader = crasher;
    cache.builder = crasher;
    cache.saver = crasher;
    cache.deleter = crasher;
    cache.preProcessor = crasher;
    cache.postProcessor = crasher;
    cache.validator = crasher;
  }
  async function clearRegisters(name: string): Promise<void> {
    await manager.registerLoader(name, null);
    await manager.registerBuilder(name, null);
    await manager.registerSaver(name, null);
    await manager.registerDeleter(name, null);
    await manager.registerPreProcessor(name, null);
    await manager.registerPostProcessor(name, null);
    await manager.registerValidator(name, null);
  }

  it('builds an empty map with the default builder', async () => {
    const cache = await manager.retrieveCache('no_registers');
    expect(cache.hasContents).to.equal(true);
    expect(entriesOf(cache)).to.deep.equal({});
  });

  it('saves and loads with the default saver and loader', async () => {
    const cache = await manager.retrieveCache('no_registers');
    cache.set('foo', 'bar');
    await manager.saveCacheContents('no_registers');
    expect(fs.existsSync(fileOf('no_registers'))).to.equal(true);
    const reloaded = await manager.reloadCache('no_registers');
    expect(reloaded).to.equal(cache); // in place: references stay valid
    expect(entriesOf(reloaded)).to.deep.equal({ foo: 'bar' });
  });

  it('overwrites a saved file on the next save', async () => {
    const cache = await manager.retrieveCache('no_registers');
    cache.set('foo', 'bar');
    await manager.saveCacheContents('no_registers');
    await manager.saveCacheContents('no_registers');
    cache.set('foo', 'baz');
    await manager.saveCacheContents('no_registers');
    expect(entriesOf(await manager.reloadCache('no_registers'))).to.deep.equal({ foo: 'baz' });
  });

  it('drops unsaved edits on invalidation but keeps the saved state', async () => {
    const cache = await manager.retrieveCache('no_registers');
    cache.set('foo', 'bar');
    await manager.invalidateCache('no_registers');
    expect(entriesOf(cache)).to.deep.equal({});
    cache.set('foo', 'bar');
    await manager.saveCacheContents('no_registers');
    cache.set('baz', 'not saved');
    await manager.invalidateCache('no_registers');
    expect(entriesOf(cache)).to.deep.equal({ foo: 'bar' });
  });

  it('deletes saved content, then rebuilds on invalidateAndRebuild', async () => {
    const cache = await manager.retrieveCache('no_registers');
    cache.set('foo', 'bar');
    await manager.saveCacheContents('no_registers');
    await manager.deleteSavedCacheContent('no_registers');
    expect(fs.existsSync(fileOf('no_registers'))).to.equal(false);
    expect(entriesOf(cache)).to.deep.equal({ foo: 'bar' }); // memory untouched
    await manager.invalidateAndRebuildCache('no_registers');
    expect(entriesOf(cache)).to.deep.equal({});
    expect(fs.existsSync(fileOf('no_registers'))).to.equal(true);
  });

  it('runs the All variants over every cache', async () => {
    await manager.registerCache('one', { foo: 'bar' });
    await manager.registerCache('two', { baz: 'bar' });
    await manager.saveAllCacheContents();
    manager.getCache('one').set('unsaved', 1);
    await manager.reloadAllCaches();
    expect(entriesOf(manager.getCache('one'))).to.deep.equal({ foo: 'bar' });
    expect(entriesOf(manager.getCache('two'))).to.deep.equal({ baz: 'bar' });
    await manager.deleteAllSavedCacheContents();
    expect(fs.existsSync(fileOf('one'))).to.equal(false);
    expect(fs.existsSync(fileOf('two'))).to.equal(false);
    await manager.invalidateAndRebuildAllCaches();
    expect(entriesOf(manager.getCache('one'))).to.deep.equal({});
    expect(entriesOf(manager.getCache('two'))).to.deep.equal({});
    await manager.reloadOrRebuildAllCaches();
    expect(manager.getCache('two').hasContents).to.equal(true);
  });

  it('deregisters after throwing hooks are cleared, keeping the saved state', async () => {
    await manager.registerCache('foo_bar', { foo: 'bar' });
    await manager.saveCacheContents('foo_bar');
    await registerCrashers('foo_bar');
    // Registered: retrieve skips straight to the cache in memory.
    expect(entriesOf(await manager.retrieveCache('foo_bar'))).to.deep.equal({ foo: 'bar' });
    const err = await assertRejects(manager.reloadCache('foo_bar'), CacheHookError, 'EHOOK');
    expect(err.hook).to.equal('loader');
    await assertRejects(manager.invalidateAndRebuildCache('foo_bar'), CacheHookError, 'EHOOK');
    // A throwing saver makes deregistering fail, and the cache stays registered.
    await assertRejects(manager.deregisterCache('foo_bar'), CacheHookError, 'EHOOK');
    expect(manager.cacheRegistered('foo_bar')).to.equal(true);
    expect(entriesOf(manager.getCache('foo_bar'))).to.deep.equal({ foo: 'bar' });

    await clearRegisters('foo_bar');
    await manager.deregisterCache('foo_bar');
    expect(manager.cacheRegistered('foo_bar')).to.equal(false);
    expect(() => manager.getCache('foo_bar')).to.throw(CacheNotFoundError);
    expect(entriesOf(await manager.retrieveCache('foo_bar'))).to.deep.equal({ foo: 'bar' });
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ foo: 'bar' });
    expect(entriesOf(await manager.invalidateAndRebuildCache('foo_bar'))).to.deep.equal({});
  });

  it('deregisters all caches, with null hooks doing nothing', async () => {
    for (const name of ['one', 'two']) await manager.registerCache(name, { foo: 'bar' });
    await manager.saveAllCacheContents();
    for (const name of ['one', 'two']) {
      await registerCrashers(name);
      await assertRejects(manager.invalidateCache(name), CacheHookError);
      await assertRejects(manager.reloadCache(name), CacheHookError);
    }
    await clearRegisters('one');
    await clearRegisters('two');
    // With every hook null: no saver, so deregistering writes nothing and throws nothing.
    await manager.deregisterAllCaches();
    expect(manager.cacheNames).to.deep.equal([]);
    for (const name of ['one', 'two']) {
      expect(entriesOf(await manager.retrieveCache(name))).to.deep.equal({ foo: 'bar' });
    }
  });

  it('registers contents that the cache holds as a copy', async () => {
    const source = { foo: 'bar' };
    const cache = await manager.registerCache('foo_baz_bar', source);
    expect(manager.cacheRegistered('foo_baz_bar')).to.equal(true);
    cache.set('baz', 'bar');
    expect(entriesOf(await manager.retrieveCache('foo_baz_bar'))).to.deep.equal({ foo: 'bar', baz: 'bar' });
    expect(source).to.deep.equal({ foo: 'bar' });
  });

  it('uses a custom loader that ignores the saved file', async () => {
    const cache = await manager.registerLoader('foo_bar', () => ({ foo: 'bar' }));
    expect(entriesOf(cache)).to.deep.equal({ foo: 'bar' });
    cache.set('baz', 'bar');
    await manager.saveCacheContents('foo_bar');
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ foo: 'bar' });
    expect(entriesOf(await manager.invalidateAndRebuildCache('foo_bar'))).to.deep.equal({});
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ foo: 'bar' });
  });

  it('uses a custom builder whose result is saved', async () => {
    const cache = await manager.registerBuilder('foo_bar', () => new Map([['foo', 'bar']]));
    await manager.invalidateAndRebuildCache('foo_bar');
    expect(entriesOf(cache)).to.deep.equal({ foo: 'bar' });
    cache.set('baz', 'bar');
    await manager.saveCacheContents('foo_bar');
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ foo: 'bar', baz: 'bar' });
    expect(entriesOf(await manager.invalidateAndRebuildCache('foo_bar'))).to.deep.equal({ foo: 'bar' });
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ foo: 'bar' });
  });

  it('calls a custom saver with a copy of the contents, only on save', async () => {
    let stored: Map<unknown, unknown> | undefined;
    const cache = await manager.registerSaver('foo_bar', (_name, contents) => {
      stored = contents;
    });
    stored = undefined; // the build saved once already
    cache.set('foo', 'bar');
    expect(stored).to.equal(undefined);
    await manager.saveCacheContents('foo_bar');
    const saved = stored as unknown as Map<unknown, unknown>;
    expect(entriesOf(saved)).to.deep.equal({ foo: 'bar' });
    cache.set('later', 1);
    expect(saved.has('later')).to.equal(false);
  });

  it('calls a custom deleter, leaving memory intact and nothing to reload', async () => {
    const deleted: string[] = [];
    const cache = await manager.retrieveCache('foo_bar');
    await manager.registerDeleter('foo_bar', async (name) => {
      deleted.push(name);
      await manager.store.remove(name);
    });
    cache.set('foo', 'bar');
    await manager.saveCacheContents('foo_bar');
    expect(deleted).to.deep.equal([]);
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ foo: 'bar' });
    await manager.deleteSavedCacheContent('foo_bar');
    expect(deleted).to.deep.equal(['foo_bar']);
    expect(entriesOf(cache)).to.deep.equal({ foo: 'bar' });
    await manager.reloadCache('foo_bar');
    expect(cache.hasContents).to.equal(false);
    expect(cache.size).to.equal(0);
    expect(cache.has('foo')).to.equal(false);
    expect(() => cache.get('foo')).to.throw(CacheContentsMissingError);
    expect(() => cache.set('foo', 1)).to.throw(CacheContentsMissingError);
    expect(() => [...cache]).to.throw(CacheContentsMissingError);
  });

  it('applies a post-processor to what is loaded or built, never to memory on save', async () => {
    const cache = await manager.retrieveCache('foo_bar');
    cache.set('foo', 'bar');
    await manager.registerPostProcessor('foo_bar', (contents: Map<unknown, unknown>) => {
      contents.set('baz', 'bar');
      return contents;
    });
    await manager.saveCacheContents('foo_bar');
    expect(entriesOf(cache)).to.deep.equal({ foo: 'bar' });
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ foo: 'bar', baz: 'bar' });
    expect(entriesOf(await manager.invalidateAndRebuildCache('foo_bar'))).to.deep.equal({ baz: 'bar' });
    cache.set('baz', 'foo');
    await manager.saveCacheContents('foo_bar');
    expect(entriesOf(cache)).to.deep.equal({ baz: 'foo' });
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ baz: 'bar' });
  });

  it('applies a pre-processor to what is saved, never to memory', async () => {
    const cache = await manager.retrieveCache('foo_bar');
    cache.set('foo', 'bar');
    await manager.registerPreProcessor('foo_bar', (contents: Map<unknown, unknown>) => {
      contents.set('baz', 'bar');
      return contents;
    });
    await manager.saveCacheContents('foo_bar');
    // Unlike CacheMan (which mutates in place), memory keeps its own state (README: Hooks).
    expect(entriesOf(cache)).to.deep.equal({ foo: 'bar' });
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ foo: 'bar', baz: 'bar' });
    expect(entriesOf(await manager.invalidateAndRebuildCache('foo_bar'))).to.deep.equal({});
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ baz: 'bar' });
  });

  it('rebuilds when the validator rejects, and loads when it accepts', async () => {
    await manager.registerValidator('foo_bar', (c: Map<unknown, unknown>) => c.has('foo'));
    const cache = await manager.retrieveCache('foo_bar');
    expect(entriesOf(cache)).to.deep.equal({});
    cache.set('baz', 'bar');
    await manager.saveCacheContents('foo_bar');
    await manager.reloadOrRebuildCache('foo_bar');
    expect(entriesOf(cache)).to.deep.equal({}); // invalid: built anew
    cache.set('foo', 'bar');
    await manager.saveCacheContents('foo_bar');
    expect(entriesOf(await manager.reloadCache('foo_bar'))).to.deep.equal({ foo: 'bar' });
  });

  it('treats a throwing validator as invalid: no contents after load', async () => {
    const cache = await manager.registerCache('v', { a: 1 });
    await cache.save();
    cache.validator = () => {
      throw new Error('nope');
    };
    const loaded = await cache.load();
    expect(loaded).to.equal(false);
    expect(cache.hasContents).to.equal(false);
  });

  it('saves and deletes dependents when asked to cascade', async () => {
    await manager.registerCache('one', { foo: 'bar' });
    await manager.registerCache('two', { baz: 'bar' });
    await manager.registerDependentCache('one', 'two');
    await manager.saveCacheContents('one', true);
    expect(entriesOf(await manager.reloadCache('one'))).to.deep.equal({ foo: 'bar' });
    expect(entriesOf(await manager.reloadCache('two'))).to.deep.equal({ baz: 'bar' });
    await manager.deleteSavedCacheContent('one');
    expect(fs.existsSync(fileOf('two'))).to.equal(false);
    await manager.reloadOrRebuildCache('one', true);
    expect(entriesOf(manager.getCache('one'))).to.deep.equal({});
    expect(entriesOf(manager.getCache('two'))).to.deep.equal({});
  });

  it('invalidates and rebuilds dependents', async () => {
    await manager.registerCache('one', { foo: 'bar' });
    await manager.registerCache('two', { baz: 'bar' });
    await manager.registerDependentCache('one', 'two');
    await manager.saveAllCacheContents();
    manager.getCache('one').set('ignored', true);
    manager.getCache('two').set('ignored', true);
    await manager.invalidateCache('one');
    expect(entriesOf(manager.getCache('one'))).to.deep.equal({ foo: 'bar' });
    expect(entriesOf(manager.getCache('two'))).to.deep.equal({ baz: 'bar' });
    await manager.invalidateAndRebuildCache('one');
    expect(entriesOf(manager.getCache('one'))).to.deep.equal({});
    expect(entriesOf(manager.getCache('two'))).to.deep.equal({});
    expect(entriesOf(await manager.reloadCache('two'))).to.deep.equal({});
  });

  it('does not cascade invalidation when cascade is false', async () => {
    await manager.registerCache('one', { foo: 'bar' });
    await manager.registerCache('two', { baz: 'bar' });
    await manager.registerDependentCache('one', 'two');
    await manager.saveAllCacheContents();
    manager.getCache('two').set('kept', true);
    await manager.invalidateCache('one', false);
    expect(manager.getCache('two').get('kept')).to.equal(true);
  });

  it('deregisters dependents with cascade', async () => {
    await manager.registerCache('one', { foo: 'bar' });
    await manager.registerCache('two', { baz: 'bar' });
    await manager.registerDependentCache('one', 'two');
    await manager.deregisterCache('one', true);
    expect(manager.cacheRegistered('one')).to.equal(false);
    expect(manager.cacheRegistered('two')).to.equal(false);
    // Deregistering saved them first.
    expect(fs.existsSync(fileOf('one'))).to.equal(true);
    expect(fs.existsSync(fileOf('two'))).to.equal(true);
  });

  it('saves a grandchild chain through the cascade', async () => {
    await manager.registerCache('one', { foo: 'bar' });
    await manager.registerCache('two', { baz: 'bar' });
    await manager.registerDependentCache('one', 'two');
    await manager.registerDependentCache('two', 'grandchild');
    await manager.registerCache('grandchild', { grand: 'child' });
    await manager.saveCacheContents('one', true);
    expect(entriesOf(await manager.reloadCache('grandchild'))).to.deep.equal({ grand: 'child' });
  });

  it('registers a dependent the cascade reaches before anyone registered it', async () => {
    await manager.registerCache('parent', { p: 1 });
    await manager.registerDependentCache('parent', 'late');
    expect(manager.cacheRegistered('late')).to.equal(false);
    await manager.invalidateCache('parent');
    expect(manager.cacheRegistered('late')).to.equal(true);
  });

  it('visits each cache of a cycle once', async () => {
    const loads: string[] = [];
    manager.on('load', (e) => loads.push(e.cache));
    for (const n of ['a', 'b', 'c']) await manager.registerCache(n, { [n]: 1 });
    await manager.registerDependentCache('a', 'b');
    await manager.registerDependentCache('b', 'c');
    await manager.registerDependentCache('c', 'a');
    loads.length = 0;
    await manager.invalidateCache('b');
    expect(loads).to.deep.equal(['b', 'c', 'a']);
  });

  it('visits the bottom of a diamond once, after both parents', async () => {
    const built: string[] = [];
    for (const n of ['top', 'left', 'right', 'bottom']) {
      await manager.registerCustomCache(n, {
        builder: (name) => {
          built.push(name);
          return {};
        },
      });
    }
    await manager.registerDependentCache('top', 'left');
    await manager.registerDependentCache('top', 'right');
    await manager.registerDependentCache('left', 'bottom');
    await manager.registerDependentCache('right', 'bottom');
    built.length = 0;
    await manager.invalidateAndRebuildCache('top');
    expect(built).to.have.length(4);
    expect(built[0]).to.equal('top');
    expect(built[3]).to.equal('bottom');
  });

  it('writes no file for a non-persistent cache', async () => {
    const cache = await manager.registerCustomCache('np', { contents: { foo: 'bar' }, persistent: false });
    expect(cache).to.be.instanceOf(NonPersistentCache);
    await manager.saveCacheContents('np');
    expect(fs.existsSync(fileOf('np'))).to.equal(false);
    cache.set('baz', 'bar');
    expect(entriesOf(cache)).to.deep.equal({ foo: 'bar', baz: 'bar' });
    await manager.reloadCache('np');
    expect(entriesOf(cache)).to.deep.equal({});
    cache.set('baz', 'bar');
    expect(entriesOf(await manager.invalidateAndRebuildCache('np'))).to.deep.equal({});
    const dir = manager.cacheDirectory;
    expect(fs.existsSync(dir) ? fs.readdirSync(dir) : []).to.deep.equal([]);
  });

  it('loads saved contents on open', async () => {
    const first = await PersistentCache.open('opened', { manager });
    first.set('k', 'v');
    await first.save();
    await manager.deregisterCache('opened');
    const second = await PersistentCache.open<string, string>('opened', { manager });
    expect(second.get('k')).to.equal('v');
  });

  it('builds on open when nothing is saved', async () => {
    const cache = await PersistentCache.open('fresh', { manager, builder: () => [['x', 1]] });
    expect(entriesOf(cache)).to.deep.equal({ x: 1 });
    expect(fs.existsSync(cache.path)).to.equal(true);
  });

  it('saves when disposed with await using', async () => {
    {
      await using cache = new PersistentCache('scoped', { manager, contents: { a: 1 } });
      cache.set('b', 2);
    }
    const check = await manager.store.read('scoped', 'throw', () => undefined);
    expect(check && Object.fromEntries(check)).to.deep.equal({ a: 1, b: 2 });
  });

  it('refuses a second cache of the same name in one manager', () => {
    new PersistentCache('dup', { manager });
    expect(() => new PersistentCache('dup', { manager })).to.throw(/already registered/);
  });
});

describe('CacheMap', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  describe('Map behaviour', () => {
    it('is a Map and behaves like one', () => {
      const cache = new NonPersistentCache<string, number>('m', { manager, contents: [['a', 1]] });
      expect(cache).to.be.instanceOf(Map);
      cache.set('b', 2).set('c', 3);
      expect(cache.get('b')).to.equal(2);
      expect(cache.delete('a')).to.equal(true);
      expect(cache.delete('a')).to.equal(false);
      expect([...cache.keys()]).to.deep.equal(['b', 'c']);
      expect([...cache.values()]).to.deep.equal([2, 3]);
      const seen: string[] = [];
      cache.forEach((v, k) => seen.push(`${k}=${v}`));
      expect(seen).to.deep.equal(['b=2', 'c=3']);
      expect(Object.prototype.toString.call(cache)).to.equal('[object NonPersistentCache]');
      cache.clear();
      expect(cache.size).to.equal(0);
    });

    it('accepts a Map, pairs or a plain object as contents', () => {
      const a = new CacheMap('a', { manager, contents: new Map([[1, 'x']]) });
      const b = new CacheMap('b', { manager, contents: [[1, 'x']] });
      const c = new CacheMap('c', { manager, contents: { 1: 'x' } });
      expect([...a]).to.deep.equal([[1, 'x']]);
      expect([...b]).to.deep.equal([[1, 'x']]);
      expect([...c]).to.deep.equal([['1', 'x']]);
    });

    it('rejects hook output of the wrong shape with a TypeError naming the cache', async () => {
      const cache = new CacheMap('shape', { manager, builder: () => 42 as never });
      await assertRejects(cache.build(), TypeError);
    });

    it('counts edits and clears them on save', async () => {
      const cache = new PersistentCache('edits', { manager, contents: {} });
      cache.set('a', 1);
      cache.set('b', 2);
      cache.delete('a');
      cache.delete('missing');
      expect(cache.dirtyEdits).to.be.greaterThan(2);
      await cache.save();
      expect(cache.dirtyEdits).to.equal(0);
    });
  });

  describe('option: saveOnBlank', () => {
    it('skips saving an empty cache when false', async () => {
      const cache = new PersistentCache('blank', { manager, contents: {}, saveOnBlank: false });
      expect(await cache.save()).to.equal(false);
      expect(fs.existsSync(cache.path)).to.equal(false);
      cache.set('a', 1);
      expect(await cache.save()).to.equal(true);
    });
  });

  describe('throwing hooks leave the cache unchanged', () => {
    for (const hook of ['loader', 'postProcessor'] as const) {
      it(`keeps contents when the ${hook} throws on load`, async () => {
        const cache = new PersistentCache('h', { manager, contents: { a: 1 } });
        await cache.save();
        cache[hook] = () => {
          throw new Error(hook);
        };
        const err = await assertRejects(cache.load(), CacheHookError, 'EHOOK');
        expect(err.hook).to.equal(hook);
        expect(err.cacheName).to.equal('h');
        expect((err.cause as Error).message).to.equal(hook);
        expect(entriesOf(cache)).to.deep.equal({ a: 1 });
      });
    }

    it('keeps memory and the saved file when the builder throws on rebuild', async () => {
      const cache = new PersistentCache('b', { manager, contents: { a: 1 } });
      await cache.save();
      cache.builder = async () => {
        throw new Error('builder');
      };
      await assertRejects(cache.invalidateAndRebuild(), CacheHookError, 'EHOOK');
      expect(entriesOf(cache)).to.deep.equal({ a: 1 });
      expect(fs.existsSync(cache.path)).to.equal(true);
    });

    it('keeps edits dirty when the saver throws', async () => {
      const cache = new PersistentCache('s', { manager, contents: {} });
      cache.set('a', 1);
      cache.saver = () => Promise.reject(new Error('disk full'));
      await assertRejects(cache.save(), CacheHookError, 'EHOOK');
      expect(cache.dirtyEdits).to.be.greaterThan(0);
      expect(cache.get('a')).to.equal(1);
    });

    it('keeps the file when the deleter throws', async () => {
      const cache = new PersistentCache('d', { manager, contents: { a: 1 } });
      await cache.save();
      cache.deleter = () => {
        throw new Error('deleter');
      };
      await assertRejects(cache.deleteSavedContent(), CacheHookError, 'EHOOK');
      expect(fs.existsSync(cache.path)).to.equal(true);
    });

    it('saves nothing when the pre-processor throws', async () => {
      const cache = new PersistentCache('p', { manager, contents: { a: 1 } });
      cache.preProcessor = () => {
        throw new Error('pre');
      };
      await assertRejects(cache.save(), CacheHookError, 'EHOOK');
      expect(fs.existsSync(cache.path)).to.equal(false);
    });
  });

  describe('#save()', () => {
    it('runs saves one at a time and coalesces those requested meanwhile', async () => {
      const gate = deferred();
      const seen: number[] = [];
      let running = 0;
      let maxRunning = 0;
      const cache = new CacheMap<string, number>('co', {
        manager,
        contents: { n: 0 },
        saver: async (_name, contents) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          if (seen.length === 0) await gate.promise;
          seen.push(contents.get('n') as number);
          running--;
        },
      });
      const first = cache.save();
      await Promise.resolve();
      const waiting: Promise<boolean>[] = [];
      for (let i = 1; i <= 5; i++) {
        cache.set('n', i);
        waiting.push(cache.save());
      }
      expect(new Set(waiting).size).to.equal(1); // all five share one follow-up save
      gate.resolve();
      await Promise.all([first, ...waiting]);
      expect(seen).to.deep.equal([0, 5]);
      expect(maxRunning).to.equal(1);
    });

    it('makes a load wait for a save in flight', async () => {
      const gate = deferred();
      const order: string[] = [];
      const cache = new CacheMap('lw', {
        manager,
        contents: { a: 1 },
        saver: async () => {
          await gate.promise;
          order.push('save');
        },
        loader: () => {
          order.push('load');
          return { a: 2 };
        },
      });
      const saving = cache.save();
      const loading = cache.load();
      await Promise.resolve();
      expect(order).to.deep.equal([]);
      gate.resolve();
      await Promise.all([saving, loading]);
      expect(order).to.deep.equal(['save', 'load']);
    });
  });

  describe('events', () => {
    it('emits load, save, build, invalidate and delete', async () => {
      const events: string[] = [];
      for (const e of ['load', 'save', 'build', 'invalidate', 'delete'] as const) {
        manager.on(e, (p: { cache: string }) => events.push(`${e}:${p.cache}`));
      }
      const cache = await PersistentCache.open('ev', { manager });
      await cache.invalidate();
      await cache.deleteSavedContent();
      expect(events).to.deep.equal([
        'load:ev',
        'build:ev',
        'save:ev',
        'load:ev',
        'invalidate:ev',
        'delete:ev',
      ]);
    });

    it('keeps running when a listener throws', async () => {
      const errors: Error[] = [];
      manager.on('error', (e) => errors.push(e));
      manager.on('save', () => {
        throw new Error('listener');
      });
      let second = 0;
      manager.on('save', () => second++);
      const cache = new PersistentCache('l', { manager, contents: {} });
      expect(await cache.save()).to.equal(true);
      expect(second).to.equal(1);
      expect(errors.map((e) => e.message)).to.deep.equal(['listener']);
    });
  });

  describe('LazyCache', () => {
    it('builds on first access with a sync builder, and again after invalidation', async () => {
      let builds = 0;
      const lazy = new LazyCache<number, number>('lazy', {
        manager,
        builder: () => {
          builds++;
          return [[2, 4]];
        },
      });
      expect(lazy.hasContents).to.equal(false);
      expect(builds).to.equal(0);
      expect(lazy.get(2)).to.equal(4);
      expect(lazy.has(2)).to.equal(true);
      expect(builds).to.equal(1);
      await lazy.invalidate();
      expect(lazy.hasContents).to.equal(false);
      expect(lazy.size).to.equal(1);
      expect(builds).to.equal(2);
    });

    it('refuses an async builder with a TypeError', () => {
      const lazy = new LazyCache('lazy-async', { manager, builder: async () => [] });
      expect(() => lazy.get(1)).to.throw(TypeError);
    });
  });

  describe('CacheManager', () => {
    it('closes idempotently and refuses work afterwards', async () => {
      const cache = new PersistentCache('c', { manager, contents: { a: 1 } });
      await manager.close();
      await manager.close();
      expect(fs.existsSync(cache.path)).to.equal(true);
      expect(() => cache.save()).to.throw(/closed/);
    });

    it('reports stats per cache', async () => {
      const cache = await PersistentCache.open('st', { manager });
      cache.set('a', 1);
      await cache.save();
      const stats = await manager.stats();
      const s = stats.caches.find((c) => c.name === 'st');
      expect(s).to.include({ kind: 'PersistentCache', entries: 1, dirtyEdits: 0, saves: 2, builds: 1 });
      expect(s?.lastSaveBytes).to.be.greaterThan(0);
    });

    it('returns one manager per name from getCacheManager', async () => {
      const { getCacheManager } = await import('../lib');
      const a = getCacheManager('depcache-test-singleton');
      expect(getCacheManager('depcache-test-singleton')).to.equal(a);
      await a.close();
      expect(getCacheManager('depcache-test-singleton')).to.not.equal(a);
      await getCacheManager('depcache-test-singleton').close();
    });
  });
});
