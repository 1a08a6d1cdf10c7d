import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AutoSyncCache,
  CacheIOError,
  CacheManager,
  CorruptCacheFileError,
  InvalidCacheNameError,
  PersistentCache,
  UnsafeDirectoryError,
} from '../lib';
import { cacheFileName } from '../lib/store/file-name';
import { type Manifest, readManifest } from '../lib/store/manifest';
import { encodeFrameHeader, encodeHeader, encodeTrailer } from '../lib/store/file-format';
import { writeAll, writeAllSync } from '../lib/store/atomic-file';
import { assertRejects, makeTempDir, removeDir, runCliHere, runFixture, useManagersOnOneDirectory } from './helpers';

/** A tmpfs of `kb` KiB mounted on a fresh directory, or undefined where mounting is not allowed. */
function mountTmpfs(kb: number): { dir: string; unmount: () => void } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = makeTempDir();
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kb}k`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    removeDir(dir);
    return undefined;
  }
  return {
    dir,
    unmount: () => {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      removeDir(dir);
    },
  };
}

/** Fills the file system of `dir` until at most `leaveBytes` are free; returns the filler's path. */
function fillDisk(dir: string, leaveBytes: number): string {
  const filler = path.join(dir, 'filler.bin');
  const { bavail, bsize } = fs.statfsSync(dir);
  const free = bavail * bsize;
  fs.writeFileSync(filler, Buffer.alloc(Math.max(0, free - leaveBytes)));
  return filler;
}

describe('data safety', () => {
  describe('a full disk', () => {
    let mount: { dir: string; unmount: () => void } | undefined;
    let manager: CacheManager | undefined;
    beforeEach(function () {
      mount = mountTmpfs(1024);
      if (!mount) this.skip(); // needs root (CI runs as root)
    });
    afterEach(async () => {
      await manager?.close().catch(() => undefined);
      manager = undefined;
      mount?.unmount();
      mount = undefined;
    });

    it('rejects the save with ENOSPC, keeps the old file loadable and the edits dirty, then saves all once space is freed', async () => {
      const dir = (mount as { dir: string }).dir;
      manager = new CacheManager('full', { baseDirectory: dir });
      const cache = new PersistentCache<string, string>('big', { manager, contents: {} });
      for (let i = 0; i < 100; i++) cache.set(`old${i}`, 'o'.repeat(100));
      await cache.save();
      const filler = fillDisk(dir, 64 * 1024);
      for (let i = 0; i < 100; i++) cache.set(`new${i}`, 'n'.repeat(1000)); // ~100 KB more
      const err = await assertRejects(cache.save(), CacheIOError, 'EIO');
      expect(err.systemCode).to.equal('ENOSPC');
      expect(err.message).to.match(/^big: /);
      expect(cache.dirtyEdits).to.be.greaterThan(0);

      // The old file is intact: a fresh manager loads exactly the old contents.
      const reader = new CacheManager('full', { baseDirectory: dir });
      const old = new PersistentCache<string, string>('big', { manager: reader });
      expect(await old.load()).to.equal(true);
      expect(old.size).to.equal(100);
      expect(fs.readdirSync(path.join(dir, 'full')).filter((f) => f.startsWith('.big.v8.'))).to.deep.equal([]);

      fs.unlinkSync(filler);
      await cache.save();
      expect(cache.dirtyEdits).to.equal(0);
      expect(await old.load()).to.equal(true);
      expect(old.size).to.equal(200);
      expect(old.get('new99')).to.equal('n'.repeat(1000));
      await reader.close();
    });

    it('reports a failed autosave and retries it until the disk has room', async () => {
      const dir = (mount as { dir: string }).dir;
      manager = new CacheManager('auto', { baseDirectory: dir });
      const errors: Error[] = [];
      manager.on('error', (e) => errors.push(e));
      const cache = new AutoSyncCache<string, string>('events', {
        manager,
        contents: {},
        timeChecks: [{ seconds: 60, count: 5 }],
        bucketSeconds: 1,
      });
      await cache.save();
      const filler = fillDisk(dir, 16 * 1024);
      for (let i = 0; i < 50; i++) cache.set(`k${i}`, 'x'.repeat(1000));
      await waitFor(() => errors.length > 0);
      expect(errors[0]).to.be.instanceOf(CacheIOError);
      expect((errors[0] as CacheIOError).systemCode).to.equal('ENOSPC');
      expect(cache.dirtyEdits).to.be.greaterThan(0);
      fs.unlinkSync(filler);
      await waitFor(() => cache.dirtyEdits === 0, 5000);
      const reader = new CacheManager('auto', { baseDirectory: dir });
      const copy = new PersistentCache<string, string>('events', { manager: reader });
      await copy.load();
      expect(copy.size).to.equal(50);
      await reader.close();
    });
  });

  describe('a failed save at exit', () => {
    let mount: { dir: string; unmount: () => void } | undefined;
    beforeEach(function () {
      mount = mountTmpfs(1024);
      if (!mount) this.skip(); // needs root (CI runs as root)
    });
    afterEach(() => {
      mount?.unmount();
      mount = undefined;
    });
    for (const mode of ['full-natural', 'full-exit0']) {
      it(`makes the exit status non-zero and names the cache and the reason (${mode})`, async () => {
        const dir = (mount as { dir: string }).dir;
        const r = await runFixture('exit-flush.ts', [dir, mode]);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.match(/depcache: unsaved edits lost at exit: c: write failed .*ENOSPC/);
        // The old file is intact and loads.
        fs.unlinkSync(path.join(dir, 'filler.bin'));
        const reader = new CacheManager('exit', { baseDirectory: dir });
        const cache = new PersistentCache('c', { manager: reader });
        expect(await cache.load()).to.equal(true);
        await reader.close();
      });
    }
  });

  describe('files in the cache directory that are not cache files', () => {
    let dir: string;
    let manager: CacheManager;
    beforeEach(() => {
      dir = makeTempDir();
      manager = new CacheManager('m', { baseDirectory: dir });
      fs.mkdirSync(manager.cacheDirectory, { recursive: true, mode: 0o700 });
    });
    afterEach(async () => {
      await manager.close().catch(() => undefined);
      removeDir(dir);
    });
    const plant: Record<string, (file: string) => void> = {
      'a FIFO': (file) => execFileSync('mkfifo', [file]),
      'a symlink to /dev/zero': (file) => fs.symlinkSync('/dev/zero', file),
      'a directory': (file) => fs.mkdirSync(file),
      'a dangling symlink': (file) => fs.symlinkSync('/nonexistent/nowhere.v8', file),
    };
    for (const [what, make] of Object.entries(plant)) {
      it(`refuses ${what} at once with a CacheIOError, in load() and loadSync() and the CLI`, async () => {
        const file = path.join(manager.cacheDirectory, 'users.v8');
        make(file);
        const cache = new PersistentCache('users', { manager });
        const started = Date.now();
        const err = await assertRejects(cache.load(), CacheIOError, 'EIO');
        expect(err.message).to.match(/^users: .*not a regular file/);
        expect(() => cache.loadSync()).to.throw(CacheIOError, /not a regular file/);
        expect(Date.now() - started).to.be.lessThan(1000);
        for (const args of [['list'], ['verify'], ['show', 'users']]) {
          const { code, stderr, stdout } = await runCli(['--dir', manager.cacheDirectory, ...args]);
          expect(stderr, args.join(' ')).not.to.match(/\n\s+at /); // no stack trace
          expect(code, args.join(' ')).to.equal(args[0] === 'list' ? 0 : args[0] === 'verify' ? 1 : 5);
          if (args[0] === 'list') expect(stdout).to.match(/users\.v8|NO: not a regular file/);
        }
      });
    }

    it('quarantines a crafted frame (a sparse array of length 2e8, valid CRCs) in milliseconds', async () => {
      // v8: header ff 0f, 'a' (sparse array), varint 200000000, no properties, '@' 0 200000000
      const varint = (n: number) => {
        const out: number[] = [];
        for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80);
        out.push(n);
        return out;
      };
      const payload = Buffer.from([0xff, 0x0f, 0x61, ...varint(2e8), 0x40, 0x00, ...varint(2e8)]);
      const frames = Array.from({ length: 5 }, () => [encodeFrameHeader(payload), payload]).flat();
      const file = Buffer.concat([encodeHeader({ name: 'users', savedAt: 1, entries: 0 }), ...frames, encodeTrailer(5, 0)]);
      fs.writeFileSync(path.join(manager.cacheDirectory, 'users.v8'), file);
      const reported: Error[] = [];
      manager.on('error', (e) => reported.push(e));
      const cache = new PersistentCache('users', { manager });
      const started = performance.now();
      expect(await cache.load()).to.equal(false);
      expect(performance.now() - started).to.be.lessThan(200);
      expect(reported[0]).to.be.instanceOf(CorruptCacheFileError);
      expect(reported[0]?.message).to.match(/not a list of entries/);
      expect(fs.readdirSync(manager.cacheDirectory).filter((f) => f.includes('.corrupt-'))).to.have.length(1);
    });

    it('never overwrites a quarantined file: 50 corruptions in a tight loop keep 50 files', async () => {
      manager.on('error', () => undefined);
      const cache = new PersistentCache('users', { manager });
      for (let i = 0; i < 50; i++) {
        fs.writeFileSync(path.join(manager.cacheDirectory, 'users.v8'), `garbage ${i}`);
        expect(await cache.load()).to.equal(false);
      }
      const kept = fs.readdirSync(manager.cacheDirectory).filter((f) => f.includes('.corrupt-'));
      expect(kept).to.have.length(50);
      const contents = new Set(kept.map((f) => fs.readFileSync(path.join(manager.cacheDirectory, f), 'utf8')));
      expect(contents.size).to.equal(50);
    });

    it('reads frames larger and smaller than its read chunk, across chunk boundaries', async () => {
      const cache = new PersistentCache<number, string>('mixed', { manager, contents: {} });
      for (let i = 0; i < 3000; i++) cache.set(i, i % 1000 === 7 ? 'L'.repeat(1_500_000 + i) : `v${i}`);
      await cache.save();
      const copy = new PersistentCache<number, string>('mixed', { manager: new CacheManager('m', { baseDirectory: dir }) });
      expect(await copy.load()).to.equal(true);
      expect(copy.size).to.equal(3000);
      for (const [k, v] of cache) expect(copy.get(k), String(k)).to.equal(v);
      copy.clear();
      expect(copy.loadSync()).to.equal(true);
      expect(copy.get(2007)).to.equal('L'.repeat(1_502_007));
      await copy.manager.close();
    });
  });

  describe('the cache directory', () => {
    let dir: string;
    let manager: CacheManager | undefined;
    const savedTmp = process.env.TMPDIR;
    beforeEach(() => {
      dir = makeTempDir();
    });
    afterEach(async () => {
      await manager?.close().catch(() => undefined);
      manager = undefined;
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
      removeDir(dir);
    });
    const modeOf = (p: string) => fs.statSync(p).mode & 0o777;

    it('is per user under the temp directory by default, created 0700 with files 0600', async () => {
      process.env.TMPDIR = dir;
      manager = new CacheManager('mine');
      const who = process.getuid?.() ?? os.userInfo().username;
      expect(manager.cacheDirectory).to.equal(path.join(dir, `depcache-${who}`, 'mine'));
      const cache = new PersistentCache('users', { manager, contents: { a: 1 } });
      await cache.save();
      await manager.close();
      expect(modeOf(path.join(dir, `depcache-${who}`))).to.equal(0o700);
      expect(modeOf(manager.cacheDirectory)).to.equal(0o700);
      expect(modeOf(cache.path)).to.equal(0o600);
      expect(modeOf(manager.manifestPath)).to.equal(0o600);
    });

    /** Plants a valid cache file with the attacker's contents in `cacheDir`. */
    async function plant(cacheDir: string): Promise<void> {
      const attacker = new CacheManager(path.basename(cacheDir), { baseDirectory: path.dirname(cacheDir), sharedDirectory: true });
      await new PersistentCache('users', { manager: attacker, contents: { admin: 'attacker' } }).save();
      await attacker.close();
    }

    const unsafe: Record<string, (cacheDir: string) => void> = {
      'writable by others (a directory another user created first, mode 777)': (d) => fs.chmodSync(d, 0o777),
      'writable by its group': (d) => fs.chmodSync(d, 0o770),
      'owned by another user': (d) => fs.chownSync(d, 4242, 4242),
    };
    for (const [what, spoil] of Object.entries(unsafe)) {
      it(`refuses a directory ${what}, naming it and the fix, for loads and saves`, async function () {
        if (what.includes('owned') && process.getuid?.() !== 0) this.skip(); // chown needs root
        const cacheDir = path.join(dir, 'm');
        fs.mkdirSync(cacheDir, { mode: 0o700 });
        await plant(cacheDir);
        spoil(cacheDir);
        manager = new CacheManager('m', { baseDirectory: dir });
        const cache = new PersistentCache<string, string>('users', { manager });
        const err = await assertRejects(cache.load(), UnsafeDirectoryError, 'EUNSAFE_DIRECTORY');
        expect(err.directory).to.equal(cacheDir);
        expect(err.message).to.contain(cacheDir).and.to.match(/sharedDirectory/);
        expect(cache.hasContents).to.equal(false); // nothing planted was loaded
        cache.manager.on('error', () => undefined);
        const other = new PersistentCache('other', { manager, contents: { x: 1 } });
        await assertRejects(other.save(), UnsafeDirectoryError, 'EUNSAFE_DIRECTORY');
      });
    }

    it('refuses a symbolic link in place of the cache directory (writes would be redirected)', async () => {
      const elsewhere = path.join(dir, 'elsewhere');
      fs.mkdirSync(elsewhere, { mode: 0o700 });
      fs.symlinkSync(elsewhere, path.join(dir, 'm'));
      manager = new CacheManager('m', { baseDirectory: dir });
      manager.on('error', () => undefined); // the manifest write fails the same way
      const cache = new PersistentCache('users', { manager, contents: { a: 1 } });
      await assertRejects(cache.save(), UnsafeDirectoryError);
      expect(fs.readdirSync(elsewhere)).to.deep.equal([]);
    });

    it('refuses the default per-user directory when another user made it first', async () => {
      process.env.TMPDIR = dir;
      const who = process.getuid?.() ?? os.userInfo().username;
      fs.mkdirSync(path.join(dir, `depcache-${who}`), { mode: 0o777 });
      fs.chmodSync(path.join(dir, `depcache-${who}`), 0o777);
      manager = new CacheManager('m');
      manager.on('error', () => undefined); // the manifest write fails the same way
      await assertRejects(new PersistentCache('users', { manager, contents: {} }).save(), UnsafeDirectoryError);
    });

    it('uses a shared directory when told to (sharedDirectory: true)', async () => {
      const cacheDir = path.join(dir, 'team');
      fs.mkdirSync(cacheDir);
      fs.chmodSync(cacheDir, 0o777);
      manager = new CacheManager('team', { baseDirectory: dir, sharedDirectory: true });
      const cache = new PersistentCache('users', { manager, contents: { a: 1 } });
      await cache.save();
      expect(await cache.load()).to.equal(true);
    });
  });

  describe('the manifest', () => {
    const onDir = useManagersOnOneDirectory('m');
    const open = onDir.open;
    const settle = () => new Promise((r) => setTimeout(r, 50));

    it('keeps the caches and edges of every manager that writes it at the same time', async () => {
      const [a, b, c] = [open(), open(), open()];
      for (const [m, prefix] of [[a, 'a'], [b, 'b'], [c, 'c']] as const) {
        for (let i = 0; i < 5; i++) new PersistentCache(`${prefix}${i}`, { manager: m, contents: {} });
        m.addDependency(`${prefix}0`, `${prefix}1`);
      }
      await settle();
      await Promise.all([a.close(), b.close(), c.close()]);
      const manifest = readManifest(a.cacheDirectory) as Manifest;
      expect(Object.keys(manifest.caches).sort()).to.deep.equal(
        ['a', 'b', 'c'].flatMap((p) => [0, 1, 2, 3, 4].map((i) => `${p}${i}`)).sort(),
      );
      expect(manifest.dependents).to.deep.equal({ a0: ['a1'], b0: ['b1'], c0: ['c1'] });
    });

    it('moves a damaged manifest aside and reports it, never overwriting it silently', async () => {
      fs.mkdirSync(path.join(onDir.dir(), 'm'), { mode: 0o700 });
      const manifestPath = path.join(onDir.dir(), 'm', '.depcache-manifest.json');
      fs.writeFileSync(manifestPath, '{"format": "depcache-manifest", "caches": {"old": ');
      const m = open();
      const errors: Error[] = [];
      m.on('error', (e) => errors.push(e));
      new PersistentCache('fresh', { manager: m, contents: {} });
      await settle();
      await m.close();
      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(CorruptCacheFileError);
      const aside = (errors[0] as CorruptCacheFileError).quarantinedTo as string;
      expect(fs.readFileSync(aside, 'utf8')).to.contain('"old"');
      expect(Object.keys((readManifest(m.cacheDirectory) as Manifest).caches)).to.deep.equal(['fresh']);
    });

    it('makes the CLI refuse to invalidate when it cannot know the dependents, and --only delete one cache', async () => {
      const m = open();
      const raw = new PersistentCache('raw', { manager: m, contents: { a: 1 } });
      const cooked = new PersistentCache('cooked', { manager: m, contents: { b: 2 } });
      raw.addDependent(cooked);
      await raw.save();
      await cooked.save();
      await m.close();
      const manifestPath = path.join(m.cacheDirectory, '.depcache-manifest.json');
      for (const spoil of [() => fs.writeFileSync(manifestPath, 'not json'), () => fs.unlinkSync(manifestPath)]) {
        spoil();
        const r = await runCli(['--dir', m.cacheDirectory, 'invalidate', 'raw']);
        expect(r.code).to.equal(6);
        expect(r.stderr).to.match(/cannot know which caches depend on "raw".*--only/);
        expect(fs.existsSync(raw.path)).to.equal(true);
        expect(fs.existsSync(cooked.path)).to.equal(true);
      }
      const only = await runCli(['--dir', m.cacheDirectory, 'invalidate', 'raw', '--only']);
      expect(only.code).to.equal(0);
      expect(fs.existsSync(raw.path)).to.equal(false);
      expect(fs.existsSync(cooked.path)).to.equal(true);
    });
  });

  describe('cache names', () => {
    it('refuses names with lone surrogates (they would share one file) and keeps paired ones', () => {
      for (const name of ['\uD800', '\uD801', '\uDFFF', 'a\uDC00b', 'x\uD83D']) {
        expect(() => cacheFileName(name), JSON.stringify(name)).to.throw(InvalidCacheNameError);
      }
      const emoji = cacheFileName('cache \uD83D\uDE00');
      expect(emoji).to.not.equal(cacheFileName('cache \uD83D\uDE01'));
    });
  });

  describe('short writes (an injected file handle)', () => {
    const buffers = () => [Buffer.from('abc'), Buffer.from('defgh'), Buffer.alloc(0), Buffer.from('ij')];

    it('writeAll finishes what each write left over', async () => {
      const out: Buffer[] = [];
      // Takes at most 2 bytes per call, as a nearly full disk would.
      const handle = {
        async writev(bufs: Buffer[]) {
          const all = Buffer.concat(bufs).subarray(0, 2);
          out.push(all);
          return { bytesWritten: all.length };
        },
      };
      await writeAll(handle, buffers());
      expect(Buffer.concat(out).toString()).to.equal('abcdefghij');
    });

    it('writeAll fails when a write makes no progress, instead of spinning or succeeding', async () => {
      let calls = 0;
      const handle = {
        async writev() {
          calls++;
          return { bytesWritten: calls === 1 ? 4 : 0 };
        },
      };
      let caught: unknown;
      await writeAll(handle, buffers()).catch((e: unknown) => (caught = e));
      expect((caught as { code?: string }).code).to.equal('EIO');
      expect(calls).to.equal(2);
    });

    it('writeAllSync finishes short writes too', () => {
      const out: Buffer[] = [];
      writeAllSync(-1, buffers(), (_fd, bufs) => {
        const all = Buffer.concat(bufs).subarray(0, 3);
        out.push(all);
        return all.length;
      });
      expect(Buffer.concat(out).toString()).to.equal('abcdefghij');
    });
  });
});

/** The CLI in this process, as `{ code, stdout, stderr }`. */
async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, out, err } = await runCliHere(args);
  return { code, stdout: out, stderr: err };
}

async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
