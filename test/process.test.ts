import { expect } from 'chai';
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { CacheManager, PersistentCache } from '../lib';
import { isTempFileName } from '../lib/store/atomic-file';
import { FIXTURES, makeTempDir, removeDir, runFixture } from './helpers';

describe('process boundaries', () => {
  let dir: string;
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(() => {
    removeDir(dir);
  });

  describe('crash safety', () => {
    it('always leaves a complete file, old or new, when killed with SIGKILL mid-save', async function () {
      this.timeout(120000);
      const count = 30000;
      const cacheDir = path.join(dir, 'crash');
      const file = path.join(cacheDir, 'big.v8');
      const kills = 8;
      let sawTemp = false;
      for (let round = 0; round < kills; round++) {
        await new Promise<void>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            ['-r', 'ts-node/register/transpile-only', path.join(FIXTURES, 'save-loop.ts'), dir, String(count)],
            { stdio: ['ignore', 'pipe', 'inherit'] },
          );
          let killed = false;
          child.stdout.on('data', (d: Buffer) => {
            if (killed || !d.toString().includes('saved')) return;
            killed = true;
            // Random moment within the next saves; most land mid-write.
            setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 250));
          });
          child.on('error', reject);
          child.on('close', (_code, signal) =>
            signal === 'SIGKILL' ? resolve() : reject(new Error(`child ended without kill: ${signal}`)),
          );
        });
        sawTemp ||= fs.readdirSync(cacheDir).some(isTempFileName);
        const manager = new CacheManager('crash', { baseDirectory: dir });
        const decoded = await manager.store.read('big', 'throw', () => undefined);
        expect(decoded, `round ${round}: file must exist`).to.not.equal(undefined);
        const gens = new Set<number>();
        let n = 0;
        for (const [, v] of decoded as Iterable<[unknown, { gen: number }]>) {
          gens.add(v.gen);
          n++;
        }
        expect(n).to.equal(count);
        expect(gens.size, `round ${round}: one generation only`).to.equal(1);
        expect(fs.statSync(file).size).to.be.greaterThan(0);
        await manager.close();
      }
      // A later save in a live process clears the temp files the killed ones left behind.
      const manager = new CacheManager('crash', { baseDirectory: dir });
      const cache = await PersistentCache.open('other', { manager });
      await cache.save();
      expect(fs.readdirSync(cacheDir).filter(isTempFileName)).to.deep.equal([]);
      await manager.close();
      // Not an assertion on chance: reported so a run that never hit mid-save is visible.
      if (!sawTemp) console.log('      (note: no kill landed mid-write in this run)');
    });
  });

  describe('exit flush', () => {
    async function savedValue(): Promise<unknown> {
      const manager = new CacheManager('exit', { baseDirectory: dir });
      const decoded = await manager.store.read('c', 'throw', () => undefined);
      await manager.close();
      return decoded ? new Map(decoded).get('k') : undefined;
    }

    it('saves dirty caches when the process ends by itself', async () => {
      const r = await runFixture('exit-flush.ts', [dir, 'natural']);
      expect(r.code, r.stderr).to.equal(0);
      expect(await savedValue()).to.equal('natural');
    });

    it('saves dirty caches on process.exit()', async () => {
      const r = await runFixture('exit-flush.ts', [dir, 'exit-call']);
      expect(r.code, r.stderr).to.equal(3);
      expect(await savedValue()).to.equal('exit-call');
    });

    it('saves dirty caches on SIGTERM, then dies of the signal', async () => {
      let pid = 0;
      const result = runFixture('exit-flush.ts', [dir, 'sigterm'], { onSpawn: (p) => (pid = p) });
      // Wait for 'ready' by polling the file system for the built cache, then signal.
      const deadline = Date.now() + 15000;
      while (!fs.existsSync(path.join(dir, 'exit', 'c.v8')) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 200));
      process.kill(pid, 'SIGTERM');
      const r = await result;
      expect(r.signal).to.equal('SIGTERM');
      expect(await savedValue()).to.equal('sigterm');
    });

    it('exits by itself with an autosync timer pending, flushing on the way out', async () => {
      const started = Date.now();
      const r = await runFixture('exit-flush.ts', [dir, 'idle-autosync'], { timeoutMs: 15000 });
      expect(r.code, r.stderr).to.equal(0);
      expect(Date.now() - started).to.be.lessThan(12000);
      expect(await savedValue()).to.equal('idle-autosync');
    });
  });
});
