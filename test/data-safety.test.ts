import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AutoSyncCache, CacheIOError, CacheManager, PersistentCache } from '../lib';
import { writeAll, writeAllSync } from '../lib/store/atomic-file';
import { assertRejects, makeTempDir, removeDir } from './helpers';

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

async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
