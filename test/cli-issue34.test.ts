// The CLI defects of issue 34, each as a user met it: run in a child process, as the shell would.
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CacheManager, JsonCache, memoize, PersistentCache } from '../lib';
import { makeTempDir, removeDir } from './helpers';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'lib', 'cli', 'main.ts');
const NODE_ARGS = ['-r', 'ts-node/register/transpile-only', CLI];

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...NODE_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs a shell pipeline from the repository root, as a user types it. */
function shell(script: string): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', script], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

describe('depcache CLI: issue 34', function () {
  this.timeout(120000);
  let base: string;
  let dir: string;
  const at = (...args: string[]) => ['--dir', dir, ...args];

  before(async () => {
    base = makeTempDir();
    const manager = new CacheManager('cli34', { baseDirectory: base });
    dir = manager.cacheDirectory;
    const raw = new PersistentCache<number, string>('raw', { manager, contents: {} });
    for (let i = 0; i < 6000; i++) raw.set(i, `row ${i}`);
    await raw.save();
    const cleaned = new PersistentCache<string, number>('cleaned', { manager, contents: { a: 1 } });
    await cleaned.save();
    await new JsonCache('report', { manager, contents: { FR: 2 } }).save();
    await manager.registerDependentCache('raw', 'cleaned');
    await manager.registerDependentCache('cleaned', 'report');
    const add = memoize((a: number, b: { scale: string }) => `${a} ${b.scale}`, { manager, name: 'describe' });
    add(1, { scale: 'kg' });
    add(2, { scale: 'g' });
    await manager.close();
  });
  after(() => removeDir(base));

  describe('EPIPE', () => {
    it('ends quietly when the reader of stdout goes away (show … | head -1)', () => {
      const r = shell(`node ${NODE_ARGS.join(' ')} --dir '${dir}' show raw --limit 5000 | head -1`);
      expect(r.stderr).to.equal('');
      expect(r.status).to.equal(0);
      expect(r.stdout.toString()).to.match(/^raw: 6000 entries/);
    });
  });

  describe('usage errors', () => {
    it('are one line and a hint, with exit 2, never the help text', async () => {
      const r = await runCli(at('show', 'raw', '--nope'));
      expect(r.code).to.equal(2);
      expect(lines(r.stderr)).to.deep.equal(["depcache: unknown option '--nope' (run 'depcache show --help')"]);
      expect(r.stdout).to.equal('');
    });

    it('say so for an unknown command and a bad option value', async () => {
      const u = await runCli(at('lsit'));
      expect(u.code).to.equal(2);
      expect(lines(u.stderr)).to.have.length(1);
      expect(u.stderr).to.match(/^depcache: unknown command 'lsit'.*\(run 'depcache --help'\)\n$/);
      const v = await runCli(at('show', 'raw', '--limit', 'many'));
      expect(v.code).to.equal(2);
      expect(lines(v.stderr)).to.deep.equal(["depcache: --limit: expected a whole number, got many (run 'depcache show --help')"]);
    });
  });
});
