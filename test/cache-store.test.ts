import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type CacheManager,
  CacheHookError,
  type CacheStore,
  CorruptCacheFileError,
  DepcacheError,
  PersistentCache,
  type StoreBatch,
  type StoreSave,
} from '../lib';
import { LineStore } from '../examples/custom-store';
import { assertRejects, deferred, useManagersOnOneDirectory } from './helpers';

/** A LineStore that records what each save was given. */
class SpyStore extends LineStore {
  readonly saves: Array<{ mode: string; sets: unknown[]; deletes: unknown[]; batches: number }> = [];
  beforeRead: Promise<void> | undefined;
  entered: (() => void) | undefined;

  override async save(name: string, save: StoreSave): Promise<void> {
    this.entered?.();
    await this.beforeRead;
    const seen: StoreBatch[] = [];
    const replay: StoreSave = { ...save, batches: () => replayed(seen) };
    for await (const batch of save.batches()) seen.push(batch);
    this.saves.push({
      mode: save.mode,
      sets: seen.flatMap((b) => b.sets.map((e) => [e.key, e.value])),
      deletes: seen.flatMap((b) => [...b.deletes]),
      batches: seen.length,
    });
    await super.save(name, replay);
  }
}

async function* replayed(batches: StoreBatch[]): AsyncGenerator<StoreBatch> {
  for (const b of batches) yield b;
}

describe('CacheStore (the public store interface)', () => {
  const managers = useManagersOnOneDirectory('store', true);
  const dir = () => path.join(managers.dir(), 'lines');

  it('saves only what changed since the last save, through the store', async () => {
    const store = new SpyStore(dir());
    const cache = await PersistentCache.open<string, number>('c', { manager: managers.open(), store });
    for (let i = 0; i < 1000; i++) cache.set(`k${i}`, i);
    await cache.save();
    cache.set('k1', -1);
    cache.delete('k2');
    await cache.save();
    const last = store.saves[store.saves.length - 1];
    expect(last).to.deep.include({ mode: 'changes', sets: [['k1', -1]], deletes: ['k2'] });
    const again = await PersistentCache.open<string, number>('c', { manager: managers.open(), store: new LineStore(dir()) });
    expect(again.size).to.equal(999);
    expect(again.get('k1')).to.equal(-1);
  });

  it('gives the entries as they were when the save began, in several batches, while the cache changes', async () => {
    const store = new SpyStore(dir());
    const cache = await PersistentCache.open<string, number>('c', { manager: managers.open(), store });
    const gate = deferred();
    const entered = deferred();
    store.beforeRead = gate.promise;
    store.entered = entered.resolve;
    for (let i = 0; i < 5000; i++) cache.set(`k${i}`, i);
    const saving = cache.save();
    await entered.promise; // the save runs: the store holds it, batches unread
    for (let i = 0; i < 5000; i++) cache.set(`k${i}`, -i);
    cache.set('late', 1);
    gate.resolve();
    await saving;
    const save = store.saves[store.saves.length - 1] as { sets: [string, number][]; batches: number };
    expect(save.batches).to.be.greaterThan(1);
    expect(new Map(save.sets).get('k4999')).to.equal(4999);
    expect(new Map(save.sets).has('late')).to.equal(false);
    expect(cache.dirtyEdits).to.be.greaterThan(0); // the later edits are the next save's
  });

  it('keeps the generation through a save and a load, and a rebuild makes a new one', async () => {
    const a = await PersistentCache.open<string, number>('c', { manager: managers.open(), store: new LineStore(dir()) });
    a.set('k', 1);
    await a.save();
    const b = await PersistentCache.open<string, number>('c', { manager: managers.open(), store: new LineStore(dir()) });
    expect(b.generation).to.equal(a.generation);
    await b.invalidateAndRebuild();
    const c = await PersistentCache.open<string, number>('c', { manager: managers.open(), store: new LineStore(dir()) });
    expect(c.generation).to.equal(b.generation).and.not.equal(a.generation);
  });

  it('keeps the edits of a failed save unsaved, and the next save writes them', async () => {
    const store = new SpyStore(dir());
    const cache = await PersistentCache.open<string, number>('c', { manager: managers.open(), store });
    cache.set('a', 1);
    await cache.save();
    cache.set('b', 2);
    const failing = store.save.bind(store);
    store.save = async () => {
      throw new Error('disk gone');
    };
    await assertRejects(cache.save(), CacheHookError);
    expect(cache.dirtyEdits).to.equal(1);
    store.save = failing;
    await cache.save();
    const again = await PersistentCache.open<string, number>('c', { manager: managers.open(), store: new LineStore(dir()) });
    expect(again.get('b')).to.equal(2);
  });

  it('refuses expiry with a TypeError when the store cannot keep it', async () => {
    const inner = new LineStore(dir());
    const noExpiry: CacheStore = { capabilities: { expiry: false, generations: true, changes: true }, load: (n) => inner.load(n), save: (n, s) => inner.save(n, s), remove: (n) => inner.remove(n) };
    const manager = managers.open();
    expect(() => new PersistentCache('t', { manager, store: noExpiry, ttlMs: 1000 })).to.throw(TypeError, /expiry/);
    const cache = await PersistentCache.open<string, number>('c', { manager, store: noExpiry, maxEntries: 5 });
    expect(() => cache.set('k', 1, { ttlMs: 1000 })).to.throw(TypeError, /expiry/);
  });

  it('checks the store option at construction, naming what is wrong', () => {
    const manager = managers.open();
    expect(() => new PersistentCache('a', { manager, store: {} as CacheStore })).to.throw(TypeError, /store: expected a CacheStore with a load\(\) method/);
    const store = new LineStore(dir());
    expect(() => new PersistentCache('b', { manager, store, saver: () => undefined })).to.throw(TypeError, /store or the saver hook/);
    const noCaps = { load: store.load, save: store.save, remove: store.remove } as unknown as CacheStore;
    expect(() => new PersistentCache('c', { manager, store: noCaps })).to.throw(TypeError, /capabilities/);
  });

  it("raises a damaged state when the store cannot move it aside, even under 'quarantine'", async () => {
    const inner = new LineStore(dir());
    const cache = await PersistentCache.open<string, number>('c', { manager: managers.open(), store: inner });
    cache.set('k', 1);
    await cache.save();
    fs.writeFileSync(inner.fileOf('c'), `AAAA${fs.readFileSync(inner.fileOf('c'), 'utf8')}`);
    const noQuarantine: CacheStore = { capabilities: inner.capabilities, load: (n) => inner.load(n), save: (n, s) => inner.save(n, s), remove: (n) => inner.remove(n) };
    await assertRejects(PersistentCache.open('c', { manager: managers.open(), store: noQuarantine }), CorruptCacheFileError);
    expect(fs.existsSync(inner.fileOf('c'))).to.equal(true);
  });

  it('with followJournal, merges what another writer saved through a store that can follow', async function () {
    this.timeout(10000);
    const a = await PersistentCache.open<string, number>('c', { manager: managers.open('one'), store: new LineStore(dir()) });
    a.set('x', 1);
    await a.save();
    const b = await PersistentCache.open<string, number>('c', { manager: managers.open('two'), store: new LineStore(dir()), followJournal: true });
    expect(b.get('x')).to.equal(1);
    a.set('y', 2);
    await a.save();
    const deadline = Date.now() + 5000;
    while (b.get('y') !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(b.get('y')).to.equal(2);
    expect(() => new PersistentCache('d', { manager: managers.open('two'), store: { ...new LineStore(dir()), capabilities: { expiry: true, generations: true, changes: true }, load: async () => undefined, save: async () => undefined, remove: async () => undefined, follow: undefined }, followJournal: true })).to.throw(TypeError, /follow/);
  });
});

describe('docs/store-interface.md', () => {
  it('shows the example store exactly as examples/custom-store.ts has it (so it runs as written)', () => {
    const root = path.join(__dirname, '..');
    const doc = fs.readFileSync(path.join(root, 'docs', 'store-interface.md'), 'utf8');
    const example = fs.readFileSync(path.join(root, 'examples', 'custom-store.ts'), 'utf8');
    expect(doc).to.contain('```ts\n' + example + '```');
  });
});

describe('CacheStore: the paths a review found', () => {
  const managers = useManagersOnOneDirectory('store2', true);
  const dir = () => path.join(managers.dir(), 'lines');

  it('the exit flush writes what a save still under way had taken, too', async () => {
    const inner = new LineStore(dir());
    const entered = deferred();
    const release = deferred();
    let hang = false;
    const synced: unknown[][] = [];
    const store: CacheStore = {
      capabilities: inner.capabilities,
      load: (n) => inner.load(n),
      remove: (n) => inner.remove(n),
      async save(n, save) {
        if (!hang) return inner.save(n, save);
        for await (const _ of save.batches());
        entered.resolve();
        await release.promise; // the process ends before this save is written
        throw new Error('never written');
      },
      saveSync(n, save) {
        const batches = [...save.batches()]; // read once: kept to be written below
        for (const batch of batches) synced.push(batch.sets.map((e) => e.key));
        inner.saveSync(n, { ...save, batches: () => batches });
      },
    };
    const cache = await PersistentCache.open<string, number>('c', { manager: managers.open(), store });
    cache.set('kept', 0);
    await cache.save();
    hang = true;
    cache.set('a', 1);
    void cache.save();
    await entered.promise;
    cache.set('b', 2);
    expect(cache.flushSync()).to.equal(true);
    expect(synced.flat().sort()).to.deep.equal(['a', 'b']);
    const again = await PersistentCache.open<string, number>('c', { manager: managers.open(), store: new LineStore(dir()) });
    expect([...again.keys()].sort()).to.deep.equal(['a', 'b', 'kept']);
    release.resolve(); // let the test's manager close
  });

  it('a memory-only class given a store loads from it, and saves through it', async () => {
    const { NonPersistentCache } = await import('../lib');
    const a = await PersistentCache.open<string, number>('c', { manager: managers.open(), store: new LineStore(dir()) });
    a.set('saved', 1);
    await a.save();
    const b = await NonPersistentCache.open<string, number>('c', { manager: managers.open(), store: new LineStore(dir()) });
    expect(b.get('saved')).to.equal(1);
    b.set('more', 2);
    await b.save();
    const c = await PersistentCache.open<string, number>('c', { manager: managers.open(), store: new LineStore(dir()) });
    expect([...c.keys()].sort()).to.deep.equal(['more', 'saved']);
  });

  it('followJournal merges through a store that follows but takes whole saves only', async function () {
    this.timeout(10000);
    const inner = new LineStore(dir());
    const whole = (): CacheStore => ({
      capabilities: { expiry: true, generations: true, changes: false },
      load: (n) => inner.load(n),
      save: (n, s) => inner.save(n, s),
      remove: (n) => inner.remove(n),
      follow: (n, changed) => inner.follow(n, changed),
    });
    const a = await PersistentCache.open<string, number>('c', { manager: managers.open('one'), store: whole() });
    a.set('x', 1);
    await a.save();
    const b = await PersistentCache.open<string, number>('c', { manager: managers.open('two'), store: whole(), followJournal: true });
    a.set('y', 2);
    await a.save();
    const deadline = Date.now() + 5000;
    while (b.get('y') !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(b.get('y')).to.equal(2);
  });
});

describe('CacheStore: the file store stays out of it', () => {
  const managers = useManagersOnOneDirectory('store3', true);

  it("compact() of a cache saved through a store of its own leaves the v8 file of that name alone", async () => {
    // A v8 file (with its journal) of the same name, saved before the cache moved to its own store.
    const before = await PersistentCache.open<string, string>('c', { manager: managers.open('m') });
    before.set('x', 'old');
    await before.save();
    before.set('y', 'old');
    await before.save();
    const file = before.path;
    const saved = fs.readFileSync(file);
    const journal = fs.readFileSync(`${file}.journal`);
    const cache = await PersistentCache.open<string, string>('c', { manager: managers.open('m'), store: new LineStore(path.join(managers.dir(), 'lines')) });
    cache.set('k', 'new');
    await cache.save();
    await cache.compact();
    expect(fs.readFileSync(file).equals(saved)).to.equal(true);
    expect(fs.readFileSync(`${file}.journal`).equals(journal)).to.equal(true);
  });

  it('the manifest and manager.stats() count no v8 file for a cache saved through a store of its own, and the journal for one that is', async () => {
    const manager = managers.open('stats');
    const own = await PersistentCache.open<string, string>('own', { manager, store: new LineStore(path.join(managers.dir(), 'lines')) });
    const v8 = await PersistentCache.open<string, string>('v8', { manager });
    own.set('a', 'x');
    v8.set('a', 'x');
    await own.save();
    await v8.save();
    v8.set('b', 'y');
    await v8.save(); // a journal record beside the file
    const stats = await manager.stats();
    const of = (name: string) => stats.caches.find((c) => c.name === name);
    expect(of('own')?.bytesOnDisk).to.equal(undefined);
    expect(of('v8')?.bytesOnDisk).to.equal(fs.statSync(v8.path).size + fs.statSync(`${v8.path}.journal`).size);
    await manager.close();
    const manifest = JSON.parse(fs.readFileSync(path.join(manager.cacheDirectory, '.depcache-manifest.json'), 'utf8')) as { caches: Record<string, { file: string | null }> };
    expect(manifest.caches.own?.file).to.equal(null);
    expect(manifest.caches.v8?.file).to.equal(path.basename(v8.path));
  });
});

describe('CacheStore: a custom saver is adapted onto the interface', () => {
  const managers = useManagersOnOneDirectory('hook-store', true);

  it('reads its point-in-time copy in slices: the event loop runs before the saver is called, and edits meanwhile stay out', async () => {
    const n = 500_000;
    let got: Map<number, number> | undefined;
    let loopRanFirst = false;
    let immediateRan = false;
    const cache = new PersistentCache<number, number>('big', {
      manager: managers.open(),
      contents: Array.from({ length: n }, (_, i) => [i, i] as [number, number]),
      saver: (_name, contents) => {
        got = contents;
        loopRanFirst = immediateRan;
      },
    });
    const saving = cache.save();
    setImmediate(() => {
      immediateRan = true;
      cache.set(0, -1); // while the save reads: the copy keeps the value of save()'s start
      cache.delete(1);
      cache.set(-5, 5);
    });
    await saving;
    expect(loopRanFirst, 'the copy was made in one piece, blocking the event loop').to.equal(true);
    expect(got?.size).to.equal(n);
    expect(got?.get(0)).to.equal(0);
    expect(got?.get(1)).to.equal(1);
    expect(got?.has(-5)).to.equal(false);
    expect(cache.dirtyEdits).to.equal(3); // the edits made meanwhile are unsaved
  });

  it("calls the saver a build's listener put on the cache, for the save of that build", async () => {
    const manager = managers.open();
    let calls = 0;
    manager.on('build', ({ cache }) => {
      if (cache === 'swapped') manager.getCache('swapped').saver = () => void calls++;
    });
    const cache = await PersistentCache.open<string, number>('swapped', { manager, builder: () => [['a', 1]] });
    expect(calls).to.equal(1);
    expect(fs.existsSync(cache.path), 'the v8 file saver wrote instead').to.equal(false);
  });

  it('at exit, reports an asynchronous saver before running the preProcessor for nothing', async () => {
    let preProcessed = 0;
    const cache = new PersistentCache<string, number>('async-pre', {
      manager: managers.open(),
      contents: [['a', 1]],
      saver: async () => undefined,
      preProcessor: (c) => {
        preProcessed++;
        return c;
      },
    });
    let raised: unknown;
    try {
      cache.flushSync();
    } catch (err) {
      raised = err;
    }
    expect(raised).to.be.instanceOf(DepcacheError);
    expect((raised as DepcacheError).code).to.equal('EEXIT');
    expect((raised as Error).message).to.match(/async-pre: not saved at exit: its saver is asynchronous/);
    expect(preProcessed).to.equal(0);
  });

  it('calls the saver on every save, also when nothing changed (as CacheMan does)', async () => {
    let calls = 0;
    const cache = new PersistentCache<string, number>('each', { manager: managers.open(), contents: [['a', 1]], saver: () => void calls++ });
    await cache.save();
    await cache.save();
    expect(calls).to.equal(2);
  });

  it('a failing saver keeps the edits unsaved, named in a CacheHookError, and the next save writes them', async () => {
    let fail = true;
    const saved: Array<Map<string, number>> = [];
    const cache = new PersistentCache<string, number>('fails', {
      manager: managers.open(),
      contents: [['a', 1]],
      saver: (_n, c) => {
        if (fail) throw new Error('disk gone');
        saved.push(c);
      },
    });
    await cache.save().catch(() => undefined);
    cache.set('b', 2);
    await assertRejects(cache.save(), CacheHookError);
    expect(cache.dirtyEdits).to.equal(2);
    fail = false;
    await cache.save();
    expect(cache.dirtyEdits).to.equal(0);
    expect([...(saved[0] ?? [])]).to.deep.equal([['a', 1], ['b', 2]]);
  });
});
