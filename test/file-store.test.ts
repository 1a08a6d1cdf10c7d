import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CacheIOError,
  CacheManager,
  CacheSerializationError,
  CorruptCacheFileError,
  InvalidCacheNameError,
  PersistentCache,
} from '../lib';
import { FORMAT_VERSION } from '../lib/store/file-format';
import { cacheFileName } from '../lib/store/file-name';
import { isTempFileName, writeFileAtomic } from '../lib/store/atomic-file';
import { assertRejects, captureWarnings, entriesOf, useTempManager } from './helpers';

describe('FileStore', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  async function savedCache(name = 'data', entries = 100): Promise<PersistentCache<string, unknown>> {
    const cache = new PersistentCache<string, unknown>(name, { manager, contents: {} });
    for (let i = 0; i < entries; i++) cache.set(`k${i}`, { i, s: 'x'.repeat(i % 7) });
    await cache.save();
    return cache;
  }
  // The manager's manifest sits beside the cache files; these tests look at the cache files.
  const filesIn = (dir: string) =>
    fs.readdirSync(dir).filter((f) => !f.startsWith('.depcache-manifest.json') && !f.startsWith('..depcache-manifest.json')).sort();

  describe('round trip', () => {
    it('keeps the types of keys and values', async () => {
      const cache = new PersistentCache<unknown, unknown>('types', { manager, contents: {} });
      const when = new Date(1_700_000_000_000);
      cache.set(1, 'number key');
      cache.set('1', 'string key');
      cache.set(1n, { big: 2n ** 70n });
      cache.set('date', when);
      cache.set('nested', new Map<unknown, unknown>([['set', new Set([1, 'a'])], ['arr', [1, [2]]]]));
      cache.set('typed', new Float64Array([1.5, -0]));
      cache.set('bytes', new Uint8Array([1, 2, 3]));
      cache.set('nothing', undefined);
      cache.set('nil', null);
      await cache.save();
      cache.clear();
      await cache.load();
      expect(cache.get(1)).to.equal('number key');
      expect(cache.get('1')).to.equal('string key');
      expect(cache.get(1n)).to.deep.equal({ big: 2n ** 70n });
      expect(cache.get('date')).to.be.instanceOf(Date);
      expect((cache.get('date') as Date).getTime()).to.equal(when.getTime());
      const nested = cache.get('nested') as Map<string, unknown>;
      expect(nested.get('set')).to.deep.equal(new Set([1, 'a']));
      expect(cache.get('typed')).to.deep.equal(new Float64Array([1.5, -0]));
      expect(cache.get('bytes')).to.be.instanceOf(Uint8Array);
      expect(cache.has('nothing')).to.equal(true);
      expect(cache.get('nil')).to.equal(null);
      expect([...cache.keys()]).to.deep.equal([1, '1', 1n, 'date', 'nested', 'typed', 'bytes', 'nothing', 'nil']);
    });

    it('writes every frame as a dense array (v8 writes a holey one with an index per element)', async () => {
      const cache = await savedCache('dense', 5000); // three frames: full, full, partial
      const buf = fs.readFileSync(cache.path);
      let offset = 20 + buf.readUInt32LE(12); // after the header and its JSON meta
      let frames = 0;
      for (let length = buf.readUInt32LE(offset); length > 0; length = buf.readUInt32LE(offset)) {
        // payload: v8 header (0xFF, version), then the array tag: 'A' dense, 'a' sparse
        expect(String.fromCharCode(buf[offset + 8 + 2] as number), `frame ${frames}`).to.equal('A');
        offset += 8 + length;
        frames++;
      }
      expect(frames).to.equal(3);
    });

    it('keeps the real name in the header', async () => {
      const cache = await savedCache('Real Name!');
      const decoded = await manager.store.read('Real Name!', 'throw', () => undefined);
      expect(decoded?.meta.name).to.equal('Real Name!');
      expect(decoded?.meta.entries).to.equal(cache.size);
      expect(path.basename(cache.path)).to.match(/^real_name_~[0-9a-f]{32}\.v8$/);
    });
  });

  describe('corrupt files', () => {
    it('quarantines a truncated file, reports it, and loads nothing', async () => {
      const cache = await savedCache();
      const bytes = fs.readFileSync(cache.path);
      fs.writeFileSync(cache.path, bytes.subarray(0, bytes.length - 30));
      const errors: Error[] = [];
      manager.on('error', (e) => errors.push(e));
      expect(await cache.load()).to.equal(false);
      expect(cache.hasContents).to.equal(false);
      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(CorruptCacheFileError);
      expect((errors[0] as CorruptCacheFileError).code).to.equal('ECORRUPT');
      const moved = (errors[0] as CorruptCacheFileError).quarantinedTo as string;
      expect(fs.readFileSync(moved)).to.deep.equal(bytes.subarray(0, bytes.length - 30));
      expect(fs.existsSync(cache.path)).to.equal(false);
    });

    it('rebuilds through loadOrBuild after quarantining a file with a flipped byte', async () => {
      const cache = await savedCache();
      const bytes = fs.readFileSync(cache.path);
      const mid = Math.floor(bytes.length / 2);
      bytes[mid] = (bytes[mid] as number) ^ 0x40;
      fs.writeFileSync(cache.path, bytes);
      manager.on('error', () => undefined);
      expect(await cache.loadOrBuild()).to.equal(false);
      expect(entriesOf(cache)).to.deep.equal({});
      const names = filesIn(manager.cacheDirectory);
      expect(names.filter((n) => n.includes('.corrupt-'))).to.have.length(1);
      expect(names).to.include('data.v8');
    });

    it('warns once through process.emitWarning when nobody listens for errors', async () => {
      const cache = await savedCache('warned');
      const { warnings } = await captureWarnings(async () => {
        for (let round = 0; round < 2; round++) {
          fs.writeFileSync(cache.path, 'garbage that is not a cache file');
          await cache.load();
        }
      });
      expect(warnings).to.have.length(1);
      expect(warnings[0]?.code).to.equal('DEPCACHE_ECORRUPT');
    });

    it("raises CorruptCacheFileError and leaves the file with onCorrupt: 'throw'", async () => {
      const cache = await savedCache();
      cache.onCorrupt = 'throw';
      fs.writeFileSync(cache.path, fs.readFileSync(cache.path).subarray(0, 50));
      await assertRejects(cache.load(), CorruptCacheFileError, 'ECORRUPT');
      expect(fs.existsSync(cache.path)).to.equal(true);
      expect(cache.size).to.equal(100); // memory untouched
    });

    it('refuses a file of an unknown format version without moving it', async () => {
      const cache = await savedCache();
      const bytes = fs.readFileSync(cache.path);
      bytes.writeUInt16LE(FORMAT_VERSION + 1, 8);
      fs.writeFileSync(cache.path, bytes);
      await assertRejects(cache.load(), CorruptCacheFileError, 'EFORMAT_VERSION');
      expect(fs.readFileSync(cache.path)).to.deep.equal(bytes);
    });

    it('refuses a file that holds another cache (renamed by hand)', async () => {
      const other = await savedCache('other');
      const cache = new PersistentCache('mine', { manager, onCorrupt: 'throw' });
      fs.copyFileSync(other.path, cache.path);
      await assertRejects(cache.load(), CorruptCacheFileError, 'ECORRUPT');
    });
  });

  describe('cache names', () => {
    const hostile = [
      '../../x',
      '/etc/passwd',
      'a\\b',
      '..',
      '.',
      'con',
      'CON',
      'Users',
      'users',
      'a/b',
      'a:b',
      'x'.repeat(200),
      '名'.repeat(255),
      '😀'.repeat(127),
      ' ',
      '.hidden',
      'trailing.',
    ];

    it('stores every hostile name inside the cache directory, one file each', async () => {
      for (const name of hostile) {
        const cache = new PersistentCache(name, { manager, contents: { name } });
        await cache.save();
        expect(path.dirname(cache.path)).to.equal(manager.cacheDirectory);
        expect(Buffer.byteLength(path.basename(cache.path))).to.be.lessThan(256);
      }
      const files = filesIn(manager.cacheDirectory);
      expect(files).to.have.length(hostile.length);
      for (const name of hostile) {
        await manager.deregisterCache(name);
        const cache = await PersistentCache.open<string, string>(name, { manager });
        expect(cache.get('name')).to.equal(name);
      }
    });

    it('maps distinct names to distinct files, case included', () => {
      const names = new Set(hostile.map((n) => cacheFileName(n)));
      expect(names.size).to.equal(hostile.length);
      const lower = new Set(hostile.map((n) => cacheFileName(n).toLowerCase()));
      expect(lower.size).to.equal(hostile.length);
    });

    it('rejects empty, over-long and non-string names', () => {
      expect(() => new PersistentCache('', { manager })).to.throw(InvalidCacheNameError);
      expect(() => new PersistentCache('x'.repeat(256), { manager })).to.throw(InvalidCacheNameError);
      expect(() => new PersistentCache(42 as unknown as string, { manager })).to.throw(
        InvalidCacheNameError,
      );
    });
  });

  describe('failed saves', () => {
    it('names the key of an unserializable value and keeps the old file', async () => {
      const cache = await savedCache('ser', 10);
      const before = fs.readFileSync(cache.path);
      cache.set('fn', () => 1);
      const err = await assertRejects(cache.save(), CacheSerializationError, 'ESERIALIZE');
      expect(err.key).to.equal('fn');
      expect(err.message).to.contain('ser').and.contain('"fn"');
      expect(fs.readFileSync(cache.path)).to.deep.equal(before);
      expect(filesIn(manager.cacheDirectory).filter(isTempFileName)).to.deep.equal([]);
      expect(cache.dirtyEdits).to.be.greaterThan(0);
    });

    it('rejects a symbol key the same way', async () => {
      const cache = new PersistentCache<unknown, number>('sym', { manager, contents: {} });
      cache.set(Symbol('s'), 1);
      await assertRejects(cache.save(), CacheSerializationError, 'ESERIALIZE');
    });

    it('lets the last of 50 concurrent saves win, leaving no temp file', async () => {
      const cache = new PersistentCache<string, number>('many', { manager, contents: {} });
      const saves: Promise<boolean>[] = [];
      for (let i = 0; i < 50; i++) {
        cache.set('n', i);
        saves.push(cache.save());
      }
      await Promise.all(saves);
      cache.set('n', -1);
      await cache.invalidate();
      expect(cache.get('n')).to.equal(49);
      expect(filesIn(manager.cacheDirectory)).to.deep.equal(['many.v8']);
    });

    it('removes temp files of dead processes and keeps those of live ones', async () => {
      fs.mkdirSync(manager.cacheDirectory, { recursive: true });
      const dead = `.data.v8.999999.0badc0de.tmp`;
      const live = `.data.v8.${process.ppid}.0badc0de.tmp`;
      fs.writeFileSync(path.join(manager.cacheDirectory, dead), 'x');
      fs.writeFileSync(path.join(manager.cacheDirectory, live), 'x');
      await savedCache();
      expect(filesIn(manager.cacheDirectory)).to.deep.equal([live, 'data.v8'].sort());
    });
  });

  describe('deleting saved content', () => {
    it('treats a missing file as deleted, and reports any other failure as CacheIOError', async () => {
      const cache = await savedCache('gone', 3);
      await cache.deleteSavedContent();
      expect(fs.existsSync(cache.path)).to.equal(false);
      await cache.deleteSavedContent(); // nothing left to delete: not an error
      fs.mkdirSync(cache.path); // unlink cannot remove a directory
      const err = await assertRejects(cache.deleteSavedContent(), CacheIOError, 'EIO');
      expect(err.message).to.contain('gone').and.contain('delete failed');
      expect(fs.statSync(cache.path).isDirectory()).to.equal(true);
    });
  });

  describe('writeFileAtomic (the temp file opens while the caller encodes)', () => {
    it('rejects with the open error when the temp file cannot be created', async () => {
      const target = path.join(manager.cacheDirectory, 'no-such-dir', 'f.v8');
      let encoded = false;
      const err = await writeFileAtomic(target, async (opened) => {
        encoded = true; // work done before the handle is needed
        await (await opened).writeFile('x');
      }).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(encoded).to.equal(true);
      expect(err?.code).to.equal('ENOENT');
      expect(fs.existsSync(target)).to.equal(false);
    });

    it('closes and removes the temp file when the writer fails before using it', async () => {
      fs.mkdirSync(manager.cacheDirectory, { recursive: true });
      const target = path.join(manager.cacheDirectory, 'f.v8');
      fs.writeFileSync(target, 'old');
      const err = await assertRejects(
        writeFileAtomic(target, async () => {
          throw new Error('encoding failed');
        }),
        Error,
      );
      expect(err.message).to.equal('encoding failed');
      expect(fs.readFileSync(target, 'utf8')).to.equal('old');
      expect(filesIn(manager.cacheDirectory).filter(isTempFileName)).to.deep.equal([]);
    });
  });

  describe('snapshot isolation', () => {
    it('writes the map as it was when the save began, while it changes mid-save', async () => {
      // Small frames and a zero slice, so the save yields many times while we edit.
      const small = new CacheManager('snap', {
        baseDirectory: manager.cacheDirectory,
        fileStore: { frameEntries: 64, sliceMs: 0 },
      });
      const cache = new PersistentCache<string, number>('snap', { manager: small, contents: {} });
      const n = 20000;
      for (let i = 0; i < n; i++) cache.set(`k${i}`, i);
      const expected = new Map(cache);
      const saving = cache.save();
      let round = 0;
      while (round < 200) {
        await new Promise((r) => setImmediate(r));
        cache.set(`k${(round * 97) % n}`, -round); // change
        cache.delete(`k${(round * 31 + 5) % n}`); // delete
        cache.set(`new${round}`, round); // add
        if (round === 50) cache.set(`k${n - 1}`, -1);
        round++;
      }
      await saving;
      const saved = await small.store.read('snap', 'throw', () => undefined);
      const loaded = new Map<unknown, unknown>(saved);
      expect(loaded.size).to.equal(expected.size);
      // Same entries; only keys deleted mid-save before their frame move to the end.
      const sorted = (m: Map<unknown, unknown>) => [...m.entries()].sort(([a], [b]) => String(a).localeCompare(String(b)));
      expect(sorted(loaded)).to.deep.equal(sorted(expected));
      expect([...loaded.keys()].slice(0, 5)).to.deep.equal([...expected.keys()].slice(0, 5));
      expect(cache.dirtyEdits).to.be.greaterThan(0); // mid-save edits are still unsaved
      await small.close();
    });
  });
});
