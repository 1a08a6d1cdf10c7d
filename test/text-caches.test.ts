import { expect } from 'chai';
import { once } from 'node:events';
import * as fs from 'node:fs';
import {
  AutoSyncCsvCache,
  CacheManager,
  CacheSerializationError,
  CorruptCacheFileError,
  CsvCache,
  JsonCache,
  PersistentCache,
} from '../lib';
import { fromJsonSafe, toJsonSafe } from '../lib/store/json-safe';
import { readManifest } from '../lib/store/manifest';
import { assertRejects, entriesOf, useTempManager } from './helpers';

describe('text stores', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  describe('JSON-safe encoding', () => {
    it('round-trips what v8 keeps, and leaves plain JSON alone', () => {
      const value = {
        s: 'x',
        n: 1.5,
        neg: -0,
        nan: Number.NaN,
        inf: Number.NEGATIVE_INFINITY,
        big: 2n ** 70n,
        d: new Date(5),
        m: new Map<unknown, unknown>([[1, new Set(['a'])]]),
        bytes: new Uint16Array([1, 65535]),
        u: undefined,
        re: /a+b/gi,
        $dollar: 'tagged key',
        nested: [{ a: null }],
      };
      const back = fromJsonSafe(JSON.parse(JSON.stringify(toJsonSafe(value))));
      expect(back).to.deep.equal(value);
      expect(toJsonSafe({ a: [1, 'b', null] })).to.deep.equal({ a: [1, 'b', null] });
    });
  });

  describe('JsonCache', () => {
    it('saves readable JSON and loads it back with types', async () => {
      const cache = new JsonCache<string, unknown>('report', { manager, contents: {} });
      cache.set('when', new Date(0));
      cache.set('count', 10n);
      cache.set('plain', { a: [1, 2] });
      await cache.save();
      expect(cache.path.endsWith('report.json')).to.equal(true);
      const text = fs.readFileSync(cache.path, 'utf8');
      expect(JSON.parse(text)).to.include({ depcache: 'json', name: 'report' });
      expect(text).to.contain('"plain"');
      cache.clear();
      await cache.load();
      expect(cache.get('when')).to.be.instanceOf(Date);
      expect(cache.get('count')).to.equal(10n);
      expect(cache.get('plain')).to.deep.equal({ a: [1, 2] });
    });

    it('moves a truncated file aside and reports it', async () => {
      const cache = new JsonCache('t', { manager, contents: { a: 1 } });
      await cache.save();
      const text = fs.readFileSync(cache.path, 'utf8');
      fs.writeFileSync(cache.path, text.slice(0, text.length - 10));
      const errors: Error[] = [];
      manager.on('error', (e) => errors.push(e));
      expect(await cache.load()).to.equal(false);
      expect(errors[0]).to.be.instanceOf(CorruptCacheFileError);
      expect(fs.existsSync((errors[0] as CorruptCacheFileError).quarantinedTo as string)).to.equal(true);
    });
  });

  describe('CsvCache', () => {
    it('round-trips commas, quotes and newlines (default reader: strings)', async () => {
      const cache = new CsvCache<string, string>('quotes', { manager, contents: {} });
      cache.set('a,b', 'say "hi"');
      cache.set('multi', 'line 1\nline 2');
      cache.set('#hash', '');
      await cache.save();
      cache.clear();
      await cache.load();
      expect(entriesOf(cache)).to.deep.equal({ 'a,b': 'say "hi"', multi: 'line 1\nline 2', '#hash': '' });
    });

    it('uses a custom row builder and reader (tuple keys, typed values) and a header', async () => {
      type Key = [string, number];
      const options = {
        manager,
        header: ['city', 'year', 'population'],
        rowBuilder: (key: Key, value: number) => [key[0], key[1], value],
        rowReader: (row: string[]) => [[row[0] as string, Number(row[1])] as Key, Number(row[2])] as const,
      };
      const cache = new CsvCache<Key, number>('cities', { ...options, contents: [[['Paris', 2020], 2_100_000]] });
      await cache.save();
      expect(fs.readFileSync(cache.path, 'utf8').split('\n')[0]).to.equal('city,year,population');
      await manager.deregisterCache('cities');
      const again = await CsvCache.open<Key, number>('cities', options);
      expect([...again]).to.deep.equal([[['Paris', 2020], 2_100_000]]);
    });

    it('detects a file cut at a row boundary', async () => {
      const cache = new CsvCache('cut', { manager, contents: { a: '1', b: '2' }, onCorrupt: 'throw' });
      await cache.save();
      const text = fs.readFileSync(cache.path, 'utf8');
      fs.writeFileSync(cache.path, text.split('\n').slice(0, 1).join('\n') + '\n');
      await assertRejects(cache.load(), CorruptCacheFileError, 'ECORRUPT');
    });

    it('loads back rows of every length the row builder produced', async () => {
      const cache = new CsvCache<string, string[]>('ragged', {
        manager,
        contents: { a: [], b: ['1'], c: ['1', '2', '3'], d: [''] },
        rowBuilder: (key, cells) => [key, ...cells],
        rowReader: ([key, ...cells]) => [key as string, cells],
        onCorrupt: 'throw',
      });
      await cache.save();
      cache.clear();
      expect(await cache.load()).to.equal(true);
      expect(entriesOf(cache)).to.deep.equal({ a: [], b: ['1'], c: ['1', '2', '3'], d: [''] });
    });

    it('keeps a row of one empty cell (it is quoted, not a blank line)', async () => {
      const cache = new CsvCache<string, string>('empty', { manager, contents: { k: '' }, rowBuilder: (_k, v) => [v], rowReader: ([v]) => ['k', v as string], onCorrupt: 'throw' });
      await cache.save();
      cache.clear();
      await cache.load();
      expect(entriesOf(cache)).to.deep.equal({ k: '' });
    });

    it('refuses, at save, a row builder that returns no cells, naming the key', async () => {
      const cache = new CsvCache<string, string>('none', { manager, contents: { k: 'v' }, rowBuilder: () => [] });
      const err = await assertRejects(cache.save(), CacheSerializationError, 'ESERIALIZE');
      expect(err.message).to.match(/^none: .*"k"/);
    });

    it('accepts CRLF line ends and blank lines (a file from a spreadsheet or a hand edit)', async () => {
      const cache = new CsvCache<string, string>('excel', { manager, contents: { a: '1', b: 'x\ny' }, onCorrupt: 'throw' });
      await cache.save();
      const text = fs.readFileSync(cache.path, 'utf8');
      fs.writeFileSync(cache.path, `\r\n${text.replace(/\n(?=[ab#])/g, '\r\n\r\n').replace(/end\n$/, 'end\r\n')}`);
      cache.clear();
      expect(await cache.load()).to.equal(true);
      expect(entriesOf(cache)).to.deep.equal({ a: '1', b: 'x\ny' });
    });

    it('still detects a file cut at a row boundary with CRLF line ends', async () => {
      const cache = new CsvCache('cutcrlf', { manager, contents: { a: '1', b: '2' }, onCorrupt: 'throw' });
      await cache.save();
      const crlf = fs.readFileSync(cache.path, 'utf8').replace(/\n/g, '\r\n');
      fs.writeFileSync(cache.path, crlf.split('\r\n').slice(0, 1).join('\r\n') + '\r\n');
      await assertRejects(cache.load(), CorruptCacheFileError, 'ECORRUPT');
    });

    it("runs README's example: composite keys as strings, found again after a load", async () => {
      type Price = { sku: string; year: number; price: number };
      const options = {
        manager,
        header: ['sku', 'year', 'price'],
        rowBuilder: (_key: string, { sku, year, price }: Price) => [sku, year, price],
        rowReader: ([sku = '', year, price]: string[]) => [`${sku}/${year}`, { sku, year: Number(year), price: Number(price) }] as const,
      };
      const prices = await CsvCache.open<string, Price>('prices', options);
      prices.set('A1/2024', { sku: 'A1', year: 2024, price: 9.5 });
      await manager.deregisterCache('prices'); // saves, then forgets
      const again = await CsvCache.open<string, Price>('prices', options);
      expect(again.get('A1/2024')).to.deep.equal({ sku: 'A1', year: 2024, price: 9.5 });
    });

    it('saves itself as edits pile up (AutoSyncCsvCache)', async () => {
      const now = 1_000_000_000;
      const cache = await AutoSyncCsvCache.open<string, string>('auto', {
        manager,
        timeChecks: [{ seconds: 1, count: 2 }],
        bucketSeconds: 1,
        clock: () => now,
      });
      const saved = once(manager, 'save');
      cache.set('a', '1');
      cache.set('b', '2');
      await saved;
      expect(fs.readFileSync(cache.path, 'utf8')).to.contain('a,1');
    });
  });

  describe('manifest', () => {
    it('records caches, kinds, files and dependency edges', async () => {
      new PersistentCache('raw', { manager, contents: {} });
      new JsonCache('report', { manager, contents: {} });
      await manager.registerDependentCache('raw', 'report');
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      await manager.close();
      const manifest = readManifest(manager.cacheDirectory);
      expect(manifest?.caches).to.deep.include({
        raw: { kind: 'PersistentCache', file: 'raw.v8' },
        report: { kind: 'JsonCache', file: 'report.json' },
      });
      expect(manifest?.dependents).to.deep.equal({ raw: ['report'] });
    });
  });

  describe('manager.stats()', () => {
    it('reports figures that change as caches are used, and the process', async () => {
      const cache = await PersistentCache.open<string, number>('s', { manager });
      let stats = await manager.stats();
      const before = stats.caches.find((c) => c.name === 's');
      cache.set('a', 1);
      cache.set('b', 2);
      stats = await manager.stats();
      expect(stats.caches.find((c) => c.name === 's')?.dirtyEdits).to.equal(2);
      await cache.save();
      stats = await manager.stats();
      const after = stats.caches.find((c) => c.name === 's');
      expect(after?.saves).to.equal((before?.saves ?? 0) + 1);
      expect(after?.bytesOnDisk).to.be.greaterThan(before?.bytesOnDisk ?? 0);
      expect(after?.lastSaveMs).to.be.a('number');
      expect(stats.process.pid).to.equal(process.pid);
      expect(stats.process.memoryBytes).to.be.greaterThan(0);
    });
  });
});

describe('text caches through the store boundary', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  it('loadSync() still reads a JSON or CSV cache (a synchronous memoized function needs it)', async () => {
    const json = await JsonCache.open<string, number>('j', { manager });
    json.set('k', 1);
    await json.save();
    const csv = await CsvCache.open<string, string>('c', { manager });
    csv.set('k', 'v');
    await csv.save();
    const { CacheManager: Manager } = await import('../lib');
    const other = new Manager(manager.name, { baseDirectory: require('node:path').dirname(manager.cacheDirectory) });
    try {
      const j = new JsonCache<string, number>('j', { manager: other });
      expect(j.hasDefaultLoader).to.equal(true);
      expect(j.loadSync()).to.equal(true);
      expect(j.get('k')).to.equal(1);
      const c = new CsvCache<string, string>('c', { manager: other });
      expect(c.loadSync()).to.equal(true);
      expect(c.get('k')).to.equal('v');
    } finally {
      await other.close();
    }
  });
});
