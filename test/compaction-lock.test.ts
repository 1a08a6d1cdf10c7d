import { expect } from 'chai';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CacheManager, type CorruptCacheFileError, PersistentCache } from '../lib';
import { readBaseMetaSync } from '../lib/store/base-meta';
import { compactFiles } from '../lib/store/compaction';
import { compactFilesOffThread } from '../lib/store/compaction-thread';
import { FileStore } from '../lib/store/file-store';
import { readJournalHeaderSync } from '../lib/store/journal';
import { FIXTURES, makeTempDir, removeDir } from './helpers';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

// A compaction holds the cache's lock only at its start and its end: what is appended between
// is carried into the new base's journal, never dropped.
describe('compaction without the lock held throughout', () => {
  let dir: string;
  const managers: CacheManager[] = [];
  const open = (fileStore = { compactMinBytes: 0, compactShare: 0.01 }) => {
    const m = new CacheManager('c', { baseDirectory: dir, fileStore });
    managers.push(m);
    m.on('error', () => undefined);
    return m;
  };
  const reload = async (name: string): Promise<Map<unknown, unknown>> => {
    const copy = new PersistentCache(name, { manager: open() });
    expect(await copy.load()).to.equal(true);
    return new Map(copy);
  };
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(async () => {
    for (const m of managers.splice(0)) await m.close().catch(() => undefined);
    removeDir(dir);
  });

  /** Holds the next file compaction of `m` between its two locked steps until `release`. */
  const holdCompaction = (m: CacheManager) => {
    const store = m.store as FileStore;
    const entered = deferred();
    const release = deferred();
    store.compactFilesWith = async (...args) => {
      entered.resolve();
      await release.promise;
      return compactFilesOffThread(...args);
    };
    return { entered: entered.promise, release: release.resolve };
  };

  /** A cache with a base and a journal record of another process's, so the next append is due. */
  const setUp = async () => {
    const m = open();
    const cache = new PersistentCache<string, number>('held', { manager: m, contents: {} });
    for (let i = 0; i < 2_000; i++) cache.set(`k${i}`, i);
    await cache.save();
    // Another process that only ever appends (never compacts, never writes whole unless cleared).
    const peer = await PersistentCache.open<string, number>('held', { manager: open({ compactMinBytes: 2 ** 50, compactShare: 1e6 }) });
    peer.set('peer-before', 1);
    await peer.save();
    return { m, cache, peer };
  };

  it('a small save resolves, and another process appends, while a compaction is still running; the new base keeps both', async () => {
    const { m, cache, peer } = await setUp();
    const held = holdCompaction(m);
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, -i);
    await cache.save(); // past the share: the compaction starts after it
    await held.entered;
    const before = readBaseMetaSync(cache.path)?.meta.baseId;
    let released = false;
    cache.set('small', 1);
    await cache.save(); // resolves with the compaction held between its steps
    peer.set('peer-during', 2);
    peer.delete('k5');
    await peer.save();
    expect(released).to.equal(false);
    released = true;
    held.release();
    await cache.backgroundSettled();
    const after = readBaseMetaSync(cache.path)?.meta;
    expect(after?.baseId).to.not.equal(before); // compacted
    expect(after?.carries?.baseId).to.equal(before);
    expect(readJournalHeaderSync(`${cache.path}.journal`)?.meta.baseId).to.equal(after?.baseId); // the carried records
    const saved = await reload('held');
    expect(saved.get('small')).to.equal(1);
    expect(saved.get('peer-before')).to.equal(1);
    expect(saved.get('peer-during')).to.equal(2);
    expect(saved.has('k5')).to.equal(false);
    expect(saved.get('k7')).to.equal(-7);
    expect(saved.get('k1999')).to.equal(1999);
    // Saves go on appending to the new base's journal.
    cache.set('later', 3);
    await cache.save();
    expect((await reload('held')).get('later')).to.equal(3);
  });

  it('starts its thread before it takes the lock: a save made while the thread boots goes first, and is folded in', async () => {
    const { m, cache } = await setUp();
    const store = m.store as FileStore;
    const booted = deferred();
    let threads = 0;
    store.startCompactionThread = () => {
      threads++;
      return { ready: booted.promise, run: (job, progressFor) => compactFiles(job, progressFor), stop: () => undefined };
    };
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, -i);
    await cache.save(); // past the share: the compaction starts after it, its thread booting
    expect(threads).to.equal(1);
    const before = readBaseMetaSync(cache.path)?.meta.baseId;
    cache.set('small', 1);
    await cache.save(); // resolves with the thread still booting
    booted.resolve();
    await cache.backgroundSettled();
    const after = readBaseMetaSync(cache.path)?.meta;
    expect(after?.baseId).to.not.equal(before); // compacted
    // The compaction noted where the journal ended after the small save's record: folded into
    // the new base, nothing carried (had it taken the lock first, that record would be carried).
    expect(fs.existsSync(`${cache.path}.journal`)).to.equal(false);
    expect((await reload('held')).get('small')).to.equal(1);
  });

  it('drops its new base when the file was rewritten whole meanwhile (that holds everything)', async () => {
    const { m, cache, peer } = await setUp();
    const held = holdCompaction(m);
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, -i);
    await cache.save();
    await held.entered;
    peer.clear();
    peer.set('only', 1);
    await peer.save(); // a whole rewrite: a new base
    const rewritten = readBaseMetaSync(cache.path)?.meta.baseId;
    held.release();
    await cache.backgroundSettled();
    expect(readBaseMetaSync(cache.path)?.meta.baseId).to.equal(rewritten);
    expect(await reload('held')).to.deep.equal(new Map([['only', 1]]));
    expect(fs.readdirSync(path.dirname(cache.path)).filter((f) => f.startsWith('.held.v8') && f.endsWith('.tmp'))).to.deep.equal([]);
  });

  it('a crash between the two renames (new base, old journal) still applies the carried records, and the next append keeps them', async () => {
    const { m, cache, peer } = await setUp();
    const held = holdCompaction(m);
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, -i);
    await cache.save();
    await held.entered;
    peer.set('peer-during', 2);
    await peer.save();
    const oldJournal = fs.readFileSync(`${cache.path}.journal`);
    held.release();
    await cache.backgroundSettled();
    // As if the process died after renaming the base in, before renaming the carried journal.
    fs.writeFileSync(`${cache.path}.journal`, oldJournal);
    const errors: Error[] = [];
    const m2 = open();
    m2.on('error', (e) => errors.push(e));
    const copy = new PersistentCache<string, number>('held', { manager: m2 });
    expect(await copy.load()).to.equal(true);
    expect(copy.get('peer-during')).to.equal(2);
    expect(copy.get('k7')).to.equal(-7);
    expect(errors).to.deep.equal([]);
    copy.set('after-crash', 4);
    await copy.save(); // carries the old journal's records into the base's own first
    const saved = await reload('held');
    expect(saved.get('peer-during')).to.equal(2);
    expect(saved.get('after-crash')).to.equal(4);
    expect(readJournalHeaderSync(`${cache.path}.journal`)?.meta.baseId).to.equal(readBaseMetaSync(cache.path)?.meta.baseId);
  });

  describe('writers SIGKILLed at random (child processes)', function () {
    this.timeout(180_000);
    const writer = (id: string): { child: ChildProcessWithoutNullStreams; out: () => string; started: Promise<void> } => {
      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(FIXTURES, 'journal-writer.ts'), dir, id, '100000', '5'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      const started = new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('saved')) resolve();
        });
      });
      return { child, out: () => out, started };
    };

    it('two writers appending while each other\'s compactions run: every acknowledged save survives', async () => {
      for (let round = 0; round < 4; round++) {
        const ids = [`a${round}`, `b${round}`];
        const writers = ids.map(writer);
        await Promise.all(writers.map((w) => w.started));
        // Both append all along; each compacts every few saves (tiny thresholds), from the files.
        await new Promise((r) => setTimeout(r, 200 + ((round * 173) % 500)));
        for (const w of writers) w.child.kill('SIGKILL');
        await Promise.all(writers.map((w) => new Promise((r) => w.child.on('close', r))));
        const m = new CacheManager('journal', { baseDirectory: dir });
        managers.push(m);
        const errors: Error[] = [];
        m.on('error', (e) => errors.push(e));
        const cache = new PersistentCache<string, string>('shared', { manager: m });
        expect(await cache.load(), `round ${round}`).to.equal(true);
        expect(errors.filter((e) => (e as CorruptCacheFileError).code !== 'ETORN'), `round ${round}`).to.deep.equal([]);
        ids.forEach((id, w) => {
          const acknowledged = Math.max(0, ...[...(writers[w]?.out() ?? '').matchAll(/saved (\d+)/g)].map((x) => Number(x[1])));
          expect(acknowledged, `round ${round}, ${id}`).to.be.greaterThan(0);
          for (let i = 0; i < acknowledged; i++) {
            const key = `${id}:${i}`;
            if (i % 7 === 2) {
              if (i + 1 < acknowledged) expect(cache.get(key), `round ${round}, deleted ${key}`).to.equal(undefined);
              continue;
            }
            expect(cache.get(key), `round ${round}, ${key} of ${acknowledged}`).to.equal(`v${i}`);
          }
        });
        await m.close();
      }
    });

    it('a SIGKILL during a sliced append leaves the old state or the new one, never half a record', async () => {
      const outcomes: string[] = [];
      for (let round = 0; round < 6; round++) {
        const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(FIXTURES, 'sliced-append.ts'), dir, '30000', '20000'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        // Listened for from the start: a child that ends by itself before the kill (its save done
        // within the wait, or a crash before 'appending') must not leave this waiting forever.
        const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        const appending = new Promise<void>((resolve) => {
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('appending')) resolve();
          });
        });
        await Promise.race([appending, closed]);
        expect(out, `round ${round}: the child ended before its append: ${err}`).to.include('appending');
        await new Promise((r) => setTimeout(r, (round * 7) % 40));
        child.kill('SIGKILL');
        await closed;
        const m = new CacheManager('sliced', { baseDirectory: dir });
        managers.push(m);
        m.on('error', () => undefined);
        const cache = new PersistentCache<string, string>('big', { manager: m });
        expect(await cache.load(), `round ${round}`).to.equal(true);
        let changed = 0;
        for (let i = 0; i < 20_000; i++) if (cache.get(`k${i}`) === 'new') changed++;
        if (out.includes('saved')) expect(changed, `round ${round}: acknowledged`).to.equal(20_000);
        expect([0, 20_000], `round ${round}: ${changed} of 20000 changed keys applied`).to.include(changed);
        expect(cache.size).to.equal(30_001);
        outcomes.push(out.includes('saved') ? 'saved' : changed === 0 ? 'old' : 'new');
        await m.close();
        removeDir(dir);
        dir = makeTempDir();
      }
      // Most rounds die part-way through the record (the parts of 20k keys take tens of ms).
      expect(outcomes.filter((o) => o === 'old').length, outcomes.join()).to.be.greaterThan(0);
    });
  });
});
