import { expect } from 'chai';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CacheManager, CorruptCacheFileError, PersistentCache } from '../lib';
import { FIXTURES, makeTempDir, removeDir, runCliHere, runFixture } from './helpers';

describe('journal (O(changes) saves)', () => {
  let dir: string;
  const managers: CacheManager[] = [];
  const open = (fileStore: { compactMinBytes?: number; compactShare?: number } = {}) => {
    const m = new CacheManager('j', { baseDirectory: dir, fileStore });
    managers.push(m);
    m.on('error', () => undefined);
    return m;
  };
  const reload = async (name: string): Promise<Map<unknown, unknown> | undefined> => {
    const m = open();
    const copy = new PersistentCache(name, { manager: m });
    return (await copy.load()) ? new Map(copy) : undefined;
  };
  const journalOf = (cache: { readonly path: string }) => `${cache.path}.journal`;
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(async () => {
    for (const m of managers.splice(0)) await m.close().catch(() => undefined);
    removeDir(dir);
  });

  it('appends only the changed entries, and reloads base + journal to the same map', async () => {
    const cache = new PersistentCache<string, number>('c', { manager: open(), contents: {} });
    for (let i = 0; i < 5000; i++) cache.set(`k${i}`, i);
    await cache.save(); // the first save writes the base
    const baseBytes = fs.statSync(cache.path).size;
    cache.set('k1', -1);
    cache.delete('k2');
    cache.set('new', 7);
    await cache.save();
    expect(fs.statSync(cache.path).size).to.equal(baseBytes); // the base is untouched
    expect(cache.stats.lastSaveBytes).to.be.lessThan(100);
    expect(fs.statSync(journalOf(cache)).size).to.be.lessThan(200);
    expect(await reload('c')).to.deep.equal(new Map(cache));
  });

  it('keeps every change through many edits of few keys between saves, deletes included', async () => {
    const cache = new PersistentCache<string, number>('hot', { manager: open(), contents: { gone: 0, a: 0 } });
    await cache.save();
    for (let i = 0; i < 50_000; i++) cache.set(`k${i % 5}`, i); // far past the change log's limit
    cache.delete('gone');
    for (let i = 0; i < 20_000; i++) cache.set('a', i);
    await cache.save();
    expect(cache.stats.lastSaveBytes).to.be.lessThan(500); // six keys, not 70,000 edits
    expect(await reload('hot')).to.deep.equal(new Map(cache));
  });

  it('replaces the saved state on clear() and on a rebuild, and drops the old journal', async () => {
    const cache = new PersistentCache<string, number>('c', { manager: open(), contents: { a: 1, b: 2 }, builder: () => ({ built: 1 }) });
    await cache.save();
    cache.set('c', 3);
    await cache.save();
    cache.clear();
    cache.set('only', 1);
    await cache.save();
    expect(fs.existsSync(journalOf(cache))).to.equal(false);
    expect(await reload('c')).to.deep.equal(new Map([['only', 1]]));
    cache.set('x', 1);
    await cache.save();
    await cache.invalidateAndRebuild();
    expect(await reload('c')).to.deep.equal(new Map([['built', 1]]));
  });

  it('property: any sequence of edits, saves and compactions reloads to the saved map', async () => {
    type Op = { kind: 'set'; key: number; value: number } | { kind: 'delete'; key: number } | { kind: 'clear' } | { kind: 'save' } | { kind: 'compact' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 30 }), value: fc.integer() }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 30 }) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
      { weight: 3, arbitrary: fc.constant({ kind: 'save' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'compact' as const }) },
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
        const name = `p${run++}`;
        const manager = open();
        const cache = new PersistentCache<number, number>(name, { manager, contents: {} });
        let saved = new Map<number, number>();
        let everSaved = false;
        for (const o of ops) {
          if (o.kind === 'set') cache.set(o.key, o.value);
          else if (o.kind === 'delete') cache.delete(o.key);
          else if (o.kind === 'clear') cache.clear();
          else if (o.kind === 'save') {
            await cache.save();
            saved = new Map(cache);
            everSaved = true;
          } else await cache.compact();
        }
        const loaded = await reload(name);
        expect(loaded).to.deep.equal(everSaved ? saved : undefined);
      }),
      { numRuns: 60 },
    );
  });

  describe('damage', () => {
    async function journaled(): Promise<{ cache: PersistentCache<string, number>; records: number[] }> {
      const cache = new PersistentCache<string, number>('d', { manager: open(), contents: { base: 0 } });
      await cache.save();
      const records: number[] = [];
      for (let i = 1; i <= 3; i++) {
        cache.set(`r${i}`, i);
        await cache.save();
        records.push(fs.statSync(journalOf(cache)).size);
      }
      return { cache, records };
    }

    it('drops a last record cut at any byte, reports it (ETORN), loads the rest, and appends after it', async () => {
      const { cache, records } = await journaled();
      const full = fs.readFileSync(journalOf(cache));
      const lastStart = records[1] as number;
      for (let cut = lastStart; cut < full.length; cut++) {
        fs.writeFileSync(journalOf(cache), full.subarray(0, cut));
        const m = open();
        const reports: CorruptCacheFileError[] = [];
        m.removeAllListeners('error');
        m.on('error', (e) => reports.push(e as CorruptCacheFileError));
        const copy = new PersistentCache<string, number>('d', { manager: m });
        expect(await copy.load(), `cut at ${cut}`).to.equal(true);
        expect(new Map(copy)).to.deep.equal(new Map([['base', 0], ['r1', 1], ['r2', 2]]));
        // A cut at the record boundary leaves a whole journal: nothing torn to report.
        expect(reports.map((r) => r.code), `cut at ${cut}`).to.deep.equal(cut > lastStart ? ['ETORN'] : []);
        await m.close();
      }
      // A save after the torn tail cuts it off and appends a whole record.
      const m = open();
      const writer = new PersistentCache<string, number>('d', { manager: m });
      await writer.load();
      writer.set('after', 9);
      await writer.save();
      expect((await reload('d'))?.get('after')).to.equal(9);
    });

    it('quarantines base and journal when a record in the middle is damaged', async () => {
      const { cache, records } = await journaled();
      const buf = fs.readFileSync(journalOf(cache));
      const middle = (records[0] as number) + 12; // inside the second record's payload
      buf[middle] = (buf[middle] as number) ^ 0xff;
      fs.writeFileSync(journalOf(cache), buf);
      const m = open();
      const reports: Error[] = [];
      m.removeAllListeners('error');
      m.on('error', (e) => reports.push(e));
      const copy = new PersistentCache<string, number>('d', { manager: m });
      expect(await copy.load()).to.equal(false);
      expect(reports[0]).to.be.instanceOf(CorruptCacheFileError);
      expect(reports[0]?.message).to.match(/journal/);
      const names = fs.readdirSync(path.dirname(cache.path));
      expect(names.filter((n) => n.startsWith('d.v8.corrupt-'))).to.have.length(1);
      expect(names.filter((n) => n.startsWith('d.v8.journal.corrupt-'))).to.have.length(1);
    });

    it('never applies a journal to another base (a rewrite that crashed after its rename)', async () => {
      const { cache } = await journaled();
      const stale = fs.readFileSync(journalOf(cache));
      cache.clear();
      cache.set('fresh', 1);
      await cache.save(); // a new base; the journal is removed after the rename
      fs.writeFileSync(journalOf(cache), stale); // as if the crash came between the two
      expect(await reload('d')).to.deep.equal(new Map([['fresh', 1]]));
      cache.set('next', 2); // and the next save starts a journal of its own
      await cache.save();
      expect(await reload('d')).to.deep.equal(new Map([['fresh', 1], ['next', 2]]));
    });
  });

  it('compacts in the background once the journal outgrows its share of the base', async () => {
    const manager = open({ compactMinBytes: 1024, compactShare: 0.5 });
    const cache = new PersistentCache<string, string>('big', { manager, contents: {} });
    for (let i = 0; i < 200; i++) cache.set(`k${i}`, 'x'.repeat(20));
    await cache.save();
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 10; i++) cache.set(`k${(round * 10 + i) % 200}`, `round ${round}`);
      await cache.save();
    }
    await new Promise((r) => setTimeout(r, 200));
    const journal = fs.existsSync(journalOf(cache)) ? fs.statSync(journalOf(cache)).size : 0;
    expect(journal).to.be.lessThan(2048); // compacted at least once
    expect(await reload('big')).to.deep.equal(new Map(cache));
  });

  it('close waits for the compaction its own last save started', async () => {
    const manager = new CacheManager('j', { baseDirectory: dir, fileStore: { compactMinBytes: 1024, compactShare: 0.5 } });
    const cache = new PersistentCache<string, string>('closing', { manager, contents: {} });
    for (let i = 0; i < 200; i++) cache.set(`k${i}`, 'x'.repeat(20));
    await cache.save();
    for (let i = 0; i < 150; i++) cache.set(`k${i}`, 'y'.repeat(20)); // a record past half the base
    const journal = journalOf(cache);
    await manager.close(); // saves (the append crosses the threshold), then compacts
    expect(fs.existsSync(journal)).to.equal(false);
    expect(fs.readdirSync(dir, { recursive: true }).filter((n) => String(n).includes('.tmp'))).to.deep.equal([]);
    expect((await reload('closing'))?.get('k0')).to.equal('y'.repeat(20));
  });

  it('never compacts post-processed memory as the saved state: the new file holds what was saved', async () => {
    const m = open();
    // Loaded values are shaped in memory (doubled); the file keeps what was saved.
    const cache = new PersistentCache<string, number>('shaped', { manager: m, contents: { a: 1, b: 2 } });
    await cache.save();
    const shaped = new PersistentCache<string, number>('shaped', {
      manager: open(),
      postProcessor: (loaded) => new Map([...loaded].map(([k, v]) => [k, v * 2])),
    });
    await shaped.load();
    expect(shaped.get('a')).to.equal(2);
    shaped.set('c', 3);
    await shaped.save(); // appends c: memory is otherwise in step with the files
    await shaped.compact();
    expect(Object.fromEntries((await reload('shaped')) ?? [])).to.deep.equal({ a: 1, b: 2, c: 3 });
  });

  it('compacts from memory only when memory is exactly the saved state: never drops another writer\'s record, never saves unsaved edits', async () => {
    const one = open();
    const a = new PersistentCache<string, number>('shared', { manager: one, contents: { x: 1 } });
    await a.save();
    a.set('y', 2);
    await a.save(); // a journal of one record, which memory here holds
    const progress: string[] = [];
    one.store.progress = (_c, op) => (progress.push(op), undefined);
    // Another writer (another manager: its own store, as another process) appends a key.
    const b = new PersistentCache<string, number>('shared', { manager: open() });
    await b.load();
    b.set('z', 3);
    await b.save();
    await a.compact(); // memory here lacks z: the files are compacted, z kept
    expect(Object.fromEntries((await reload('shared')) ?? [])).to.deep.equal({ x: 1, y: 2, z: 3 });
    expect(fs.existsSync(journalOf(a))).to.equal(false);

    // In step again after a load; then an unsaved edit keeps memory from being written.
    await a.load();
    a.set('w', 4);
    await a.save();
    a.set('unsaved', 5);
    await a.compact();
    expect(Object.fromEntries((await reload('shared')) ?? [])).to.deep.equal({ x: 1, y: 2, z: 3, w: 4 });
    await a.save();
    // Clean and in step: written from memory (a compaction that writes, not one that decodes).
    progress.length = 0;
    const before = fs.statSync(a.path).mtimeMs;
    await a.compact();
    expect(fs.existsSync(journalOf(a))).to.equal(false);
    expect(fs.statSync(a.path).mtimeMs).to.be.greaterThan(before);
    expect(Object.fromEntries((await reload('shared')) ?? [])).to.deep.equal({ x: 1, y: 2, z: 3, w: 4, unsaved: 5 });
    // The memory path reports through #encode ('compact' for every frame written); the files path
    // reports through compactFiles: both say 'compact'.
    expect(progress).to.not.deep.equal([]); // the compaction reported at all
    expect(progress.every((op) => op === 'compact')).to.equal(true);
  });

  it('compacts a large base from its files on a worker thread: same result, progress relayed, damage reported', async function () {
    this.timeout(60_000);
    // Counts the threads the store starts (it reads Worker off the module at each start).
    const threads = require('node:worker_threads') as { Worker: new (...args: never[]) => object };
    const Original = threads.Worker;
    let started = 0;
    threads.Worker = class extends (Original as new (...args: unknown[]) => object) {
      constructor(...args: unknown[]) {
        started++;
        super(...args);
      }
    } as typeof threads.Worker;
    try {
      const one = open();
      const a = new PersistentCache<string, string>('large', { manager: one, contents: {} });
      for (let i = 0; i < 90_000; i++) a.set(`k${i}`, `${i}:`.padEnd(100, 'v'));
      await a.save();
      expect(fs.statSync(a.path).size).to.be.greaterThan(8 * 1024 * 1024); // past COMPACT_IN_THREAD_MIN_BYTES
      a.set('k1', 'mine');
      await a.save();
      // Another writer's record, then an unsaved edit here: the files are compacted, not memory.
      const b = new PersistentCache<string, string>('large', { manager: open() });
      await b.load();
      b.set('k2', 'theirs');
      b.delete('k3');
      await b.save();
      a.set('unsaved', 'x');
      const seen: Array<[string, number]> = [];
      one.store.progress = (_cache, op, total) => {
        seen.push([op, total]);
        return { update: (done) => seen.push(['update', done]), finish: () => seen.push(['finish', total]) };
      };
      await a.compact();
      expect(started).to.equal(1);
      expect(fs.existsSync(journalOf(a))).to.equal(false);
      const copy = await reload('large');
      expect(copy?.size).to.equal(90_000 - 1);
      expect([copy?.get('k1'), copy?.get('k2'), copy?.has('k3'), copy?.has('unsaved')]).to.deep.equal(['mine', 'theirs', false, false]);
      expect(copy?.get('k89999')).to.equal('89999:'.padEnd(100, 'v'));
      // The base's entries, then the journal's: relayed from the thread as they were counted.
      expect(seen[0]).to.deep.equal(['compact', 90_000 + 1 + 2]);
      expect(seen.filter(([what]) => what === 'update').length).to.be.greaterThan(10);
      expect(seen[seen.length - 1]).to.deep.equal(['finish', 90_000 + 1 + 2]);

      // A damaged record in the thread's journal reaches the caller as the typed error.
      a.set('k4', 'again');
      await a.save();
      const firstRecordEnd = fs.statSync(journalOf(a)).size;
      a.set('k5', 'and again');
      await a.save();
      a.set('k6', 'once more');
      await a.save();
      a.set('unsaved 2', 'x');
      const buf = fs.readFileSync(journalOf(a));
      buf[firstRecordEnd + 12] = (buf[firstRecordEnd + 12] as number) ^ 0xff; // inside the middle record's payload
      fs.writeFileSync(journalOf(a), buf);
      const failed = await a.compact().then(() => undefined, (err: unknown) => err);
      expect(started).to.equal(2);
      expect(failed).to.be.instanceOf(CorruptCacheFileError);
      expect((failed as Error).message).to.match(/large.*not compacted/s);
    } finally {
      threads.Worker = Original;
    }
  });

  it('flushes a dirty cache at exit by appending (a child process)', async () => {
    const r = await runFixture('journal-exit.ts', [dir]);
    expect(r.code, r.stderr).to.equal(0);
    const m = open();
    const copy = new PersistentCache<number, number>('exiting', { manager: m });
    await copy.load();
    expect(copy.size).to.equal(10_000);
    expect(copy.get(5)).to.equal(-5);
    expect(JSON.parse(r.stdout).baseUnchanged).to.equal(true);
  });

  it('followJournal merges what another writer saves, key by key, keeping unsaved keys here', async () => {
    const waitFor = async (ok: () => boolean) => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(ok()).to.equal(true);
    };
    const writerManager = open();
    const writer = new PersistentCache<string, number>('f', { manager: writerManager, contents: { a: 1 } });
    await writer.save();
    const follower = await PersistentCache.open<string, number>('f', { manager: open(), followJournal: true });
    writer.set('b', 2);
    await writer.save();
    await waitFor(() => follower.get('b') === 2);
    follower.set('mine', 10); // unsaved here
    writer.set('mine', 99);
    writer.delete('a');
    await writer.save();
    await waitFor(() => !follower.has('a'));
    expect(follower.get('mine')).to.equal(10); // its own unsaved edit wins until it saves
    writer.clear(); // a whole rewrite: merged as a whole state
    writer.set('c', 3);
    await writer.save();
    await waitFor(() => follower.get('c') === 3 && !follower.has('b'));
    expect(follower.get('mine')).to.equal(10);
    expect(follower.dirtyEdits).to.be.greaterThan(0);
  });

  for (const onCorrupt of ['throw', 'quarantine'] as const) {
    it(`following a damaged rewrite under onCorrupt: '${onCorrupt}' ${onCorrupt === 'throw' ? 'reports it and leaves the file where it is' : 'moves it aside and reports it'}`, async () => {
      const writer = new PersistentCache<string, string>('fc', { manager: open(), contents: { a: '1' } });
      await writer.save();
      const errors: Error[] = [];
      const fm = open();
      fm.on('error', (e) => errors.push(e));
      const follower = await PersistentCache.open<string, string>('fc', { manager: fm, followJournal: true, onCorrupt });
      // A whole rewrite (a new base id), damaged in its frame, made elsewhere and renamed in.
      const elsewhere = path.join(dir, 'elsewhere');
      const other = new PersistentCache<string, string>('fc', { manager: new CacheManager('j', { baseDirectory: elsewhere }), contents: { c: 'x'.repeat(10_000) } });
      managers.push(other.manager);
      await other.save();
      const bytes = fs.readFileSync(other.path);
      const middle = Math.floor(bytes.length / 2);
      bytes.writeUInt8(bytes.readUInt8(middle) ^ 0xff, middle);
      fs.writeFileSync(`${follower.path}.tmp-damaged`, bytes);
      fs.renameSync(`${follower.path}.tmp-damaged`, follower.path);
      for (let i = 0; i < 300 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(errors.length).to.be.greaterThan(0);
      expect(errors[0]).to.be.instanceOf(CorruptCacheFileError);
      const aside = fs.readdirSync(path.dirname(follower.path)).filter((f) => f.includes('.corrupt-'));
      if (onCorrupt === 'throw') {
        expect(fs.readFileSync(follower.path).equals(bytes)).to.equal(true);
        expect(aside).to.deep.equal([]);
        expect((errors[0] as CorruptCacheFileError).quarantinedTo).to.equal(undefined);
      } else {
        expect(fs.existsSync(follower.path)).to.equal(false);
        expect(aside.length).to.be.greaterThan(0);
      }
      expect(follower.get('a')).to.equal('1'); // nothing merged from a damaged file
    });
  }

  describe('several processes on one cache', function () {
    this.timeout(120_000);
    for (const processes of [2, 4]) {
      it(`loses nothing any of ${processes} processes saved (disjoint and shared keys, compactions between)`, async () => {
        const count = 300;
        const results = await Promise.all(
          Array.from({ length: processes }, (_, p) => runFixture('journal-writer.ts', [dir, `p${p}`, String(count), '20'], { timeoutMs: 60_000 })),
        );
        for (const r of results) expect(r.code, r.stderr).to.equal(0);
        const m = new CacheManager('journal', { baseDirectory: dir });
        managers.push(m);
        const cache = new PersistentCache<string, string>('shared', { manager: m });
        expect(await cache.load()).to.equal(true);
        let lost = 0;
        for (let p = 0; p < processes; p++) {
          for (let i = 0; i < count; i++) {
            const deleted = i % 7 === 2 && i + 1 < count; // deleted at i + 1 (i + 1) % 7 === 3
            const value = cache.get(`p${p}:${i}`);
            if (deleted ? value !== undefined : value !== `v${i}`) lost++;
          }
        }
        expect(lost).to.equal(0);
        for (let s = 0; s < 10; s++) expect(cache.get(`shared:${s}`)).to.match(/^p\d$/);
      });
    }
  });

  it('keeps every acknowledged save when writers are SIGKILLed during appends and compactions', async function () {
    this.timeout(120_000);
    for (let round = 0; round < 6; round++) {
      const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(FIXTURES, 'journal-writer.ts'), dir, `k${round}`, '100000', '5'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      const started = new Promise<void>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('saved')) resolve();
        });
      });
      await started;
      // Somewhere in the stream of appends and (every few saves) compactions.
      await new Promise((r) => setTimeout(r, 30 + ((round * 137) % 400)));
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
      const acknowledged = Math.max(0, ...[...out.matchAll(/saved (\d+)/g)].map((m) => Number(m[1])));
      const m = new CacheManager('journal', { baseDirectory: dir });
      managers.push(m);
      const errors: Error[] = [];
      m.on('error', (e) => errors.push(e));
      const cache = new PersistentCache<string, string>('shared', { manager: m });
      expect(await cache.load(), `round ${round}`).to.equal(true);
      expect(errors.filter((e) => (e as CorruptCacheFileError).code !== 'ETORN'), `round ${round}`).to.deep.equal([]);
      for (let i = 0; i < acknowledged; i++) {
        const key = `k${round}:${i}`;
        // i % 7 === 2 is deleted at i + 1: gone if that save was acknowledged, else either
        // (a save can reach the disk and the kill come before it is reported).
        if (i % 7 === 2) {
          if (i + 1 < acknowledged) expect(cache.get(key), `round ${round}, deleted key ${i}`).to.equal(undefined);
          continue;
        }
        expect(cache.get(key), `round ${round}, key ${i} of ${acknowledged}`).to.equal(`v${i}`);
      }
      await m.close();
    }
  });
});

describe('CLI over base + journal', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(() => removeDir(dir));

  const cli = runCliHere;

  it('list, show, export and verify see the journal; compact folds it into the file', async () => {
    const manager = new CacheManager('c', { baseDirectory: dir });
    const cache = new PersistentCache<string, number>('users', { manager, contents: { a: 1, b: 2 } });
    await cache.save();
    cache.set('c', 3);
    cache.delete('a');
    await cache.save();
    await manager.close();
    const at = ['--dir', path.join(dir, 'c')];
    const list = await cli([...at, 'list', '--json']);
    const [info] = JSON.parse(list.out) as Array<{ entries: number; journalRecords: number }>;
    expect(info).to.include({ entries: 2, journalRecords: 1 });
    const shown = await cli([...at, 'export', 'users', '--format', 'json']);
    expect(JSON.parse(shown.out)).to.deep.equal([['b', 2], ['c', 3]]);
    expect((await cli([...at, 'verify'])).code).to.equal(0);
    const journal = path.join(dir, 'c', 'users.v8.journal');
    const buf = fs.readFileSync(journal);
    buf[buf.length - 3] = (buf[buf.length - 3] as number) ^ 0xff; // the last record: torn, not corrupt
    fs.writeFileSync(journal, Buffer.concat([buf, Buffer.from(fs.readFileSync(journal).subarray(-40))]));
    expect((await cli([...at, 'verify'])).code).to.equal(1); // damaged with bytes after it: corrupt
    fs.writeFileSync(journal, buf.subarray(0, buf.length - 40)); // cut: a torn tail
    const torn = await cli([...at, 'list']);
    expect(torn.out).to.match(/torn by a crash/);
    const compacted = await cli([...at, 'compact', 'users']);
    expect(compacted.code).to.equal(0);
    expect(fs.existsSync(journal)).to.equal(false);
    expect(JSON.parse((await cli([...at, 'export', 'users', '--format', 'json'])).out)).to.deep.equal([['a', 1], ['b', 2]]);
  });
});
