// The CLI defects of issue 34, each as a user met it: run in a child process, as the shell would.
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CacheManager, JsonCache, memoize, PersistentCache } from '../lib';
import { parse } from 'csv-parse/sync';
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

/** A fresh directory holding one v8 cache, `j`, whose last save went to its journal. */
async function journaled(): Promise<{ base: string; dir: string; journal: string }> {
  const base = makeTempDir();
  const manager = new CacheManager('journaled', { baseDirectory: base });
  const j = new PersistentCache<string, number>('j', { manager, contents: { a: 1 } });
  await j.save();
  j.set('b', 2);
  await j.save(); // an append: the journal holds one record
  await manager.close();
  const journal = path.join(manager.cacheDirectory, 'j.v8.journal');
  expect(fs.existsSync(journal), 'the second save appended to a journal').to.equal(true);
  return { base, dir: manager.cacheDirectory, journal };
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

  describe('pipes, as docs/cli.md writes them', () => {
    it('npm run -s cli -- graph --format dot writes the graph alone: its first line is digraph', () => {
      const r = shell(`npm run -s cli -- --dir '${dir}' graph --format dot | head -1`);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout.toString()).to.match(/^digraph /);
    });

    it('npm run -s cli -- graph --format dot | dot -Tpng gives a PNG (no npm banner in the pipe)', function () {
      if (spawnSync('dot', ['-V']).error) return this.skip(); // Graphviz is not installed here
      const r = shell(`npm run -s cli -- --dir '${dir}' graph --format dot | dot -Tpng`);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout.subarray(0, 8).toString('latin1')).to.equal('\x89PNG\r\n\x1a\n');
    });

    it("docs/cli.md's examples work as written (after examples/etl.ts), pipes included", async function () {
      const doc = fs.readFileSync(path.join(ROOT, 'docs', 'cli.md'), 'utf8');
      expect(doc).to.not.match(/npm run cli -- [^\n`]*\|/); // the banner would go into the pipe
      const examples = [...doc.slice(doc.indexOf('## Examples')).matchAll(/^ {4}(npm run -s cli -- .+)$/gm)].map((m) => m[1] as string);
      expect(examples).to.include('npm run -s cli -- --manager etl graph --format dot | dot -Tpng -o graph.png');
      const hasDot = spawnSync('dot', ['-V']).error === undefined;
      const tmp = makeTempDir(); // the per-user directory of --manager etl, and the cwd of the pipes
      try {
        const etl = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'examples', 'etl.ts')], {
          cwd: ROOT,
          env: { ...process.env, TMPDIR: tmp },
        });
        expect(etl.status, etl.stderr.toString()).to.equal(0);
        for (const example of examples) {
          if (example.includes('| dot') && !hasDot) continue; // Graphviz is not installed here
          // npm runs the script in the repository; the shell (and so the pipe's output) stays in tmp
          const r = spawnSync('bash', ['-o', 'pipefail', '-c', `npm() { command npm --prefix '${ROOT}' "$@"; }; ${example}`], {
            cwd: tmp,
            env: { ...process.env, TMPDIR: tmp },
          });
          expect(r.status, `${example}\n${r.stderr.toString()}`).to.equal(0);
          expect(r.stderr.toString(), example).to.equal('');
        }
        if (hasDot) expect(fs.readFileSync(path.join(tmp, 'graph.png')).subarray(1, 4).toString()).to.equal('PNG');
      } finally {
        removeDir(tmp);
      }
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

  describe('journals', () => {
    let j: Awaited<ReturnType<typeof journaled>>;
    beforeEach(async () => (j = await journaled()));
    afterEach(() => removeDir(j.base));

    it('verify names a torn last record as a warning, and exits 0', async () => {
      fs.appendFileSync(j.journal, Buffer.from([9, 0, 0])); // a record header cut short
      const r = await runCli(['--dir', j.dir, 'verify']);
      expect(r.code, r.stderr).to.equal(0);
      expect(lines(r.stdout)).to.deep.equal([
        'WARNING j.v8.journal (j): its last record was cut short by a crash: a load drops it, the next save cuts it off',
        'all 1 cache file(s) verify',
      ]);
      const json = JSON.parse((await runCli(['--dir', j.dir, 'verify', '--json'])).stdout) as { torn: unknown[] };
      expect(json.torn).to.deep.equal([{ file: 'j.v8.journal', name: 'j' }]);
    });

    it('list shows the last save of any kind: a journal append too', async () => {
      const appended = new Date('2031-02-03T04:05:06.000Z');
      fs.utimesSync(j.journal, appended, appended);
      const caches = JSON.parse((await runCli(['--dir', j.dir, 'list', '--json'])).stdout) as Array<{ name: string; savedAt: string }>;
      expect(caches.find((c) => c.name === 'j')?.savedAt).to.equal(appended.toISOString());
    });

    it('rm removes the journal with the file', async () => {
      const r = await runCli(['--dir', j.dir, 'rm', 'j', '--yes']);
      expect(r.code, r.stderr).to.equal(0);
      expect(fs.readdirSync(j.dir).filter((f) => f.startsWith('j.'))).to.deep.equal([]);
    });

    it('invalidate removes the journal with the file', async () => {
      const r = await runCli(['--dir', j.dir, 'invalidate', 'j', '--only']);
      expect(r.code, r.stderr).to.equal(0);
      expect(fs.readdirSync(j.dir).filter((f) => f.startsWith('j.'))).to.deep.equal([]);
    });

    it('list shows leftovers; clean removes orphans, and quarantined files only with --corrupt', async () => {
      fs.copyFileSync(j.journal, path.join(j.dir, 'gone.v8.journal')); // its file was removed by hand
      fs.writeFileSync(path.join(j.dir, '.j.v8.999999.0badc0de.tmp'), 'x');
      fs.writeFileSync(path.join(j.dir, 'j.v8.corrupt-1700000000000'), 'x');
      const l = await runCli(['--dir', j.dir, 'list']);
      expect(l.code, l.stderr).to.equal(0);
      const listed = lines(l.stdout);
      expect(listed.slice(listed.indexOf('leftovers (not caches):'))).to.deep.equal([
        'leftovers (not caches):',
        "  .j.v8.999999.0badc0de.tmp   a temp file: a save in progress, or left by a crash ('depcache clean' removes it once its process is gone)",
        "  gone.v8.journal             a journal without its cache file ('depcache clean' removes it)",
        "  j.v8.corrupt-1700000000000  a damaged file moved aside ('depcache clean --corrupt' removes it)",
      ]);
      const c = await runCli(['--dir', j.dir, 'clean']);
      expect(c.code, c.stderr).to.equal(0);
      expect(fs.readdirSync(j.dir).sort()).to.deep.equal(['.depcache-manifest.json', 'j.v8', 'j.v8.corrupt-1700000000000', 'j.v8.journal']);
      await runCli(['--dir', j.dir, 'clean', '--corrupt']);
      expect(fs.readdirSync(j.dir).sort()).to.deep.equal(['.depcache-manifest.json', 'j.v8', 'j.v8.journal']);
      expect(lines((await runCli(['--dir', j.dir, 'list'])).stdout)).to.not.include('leftovers (not caches):');
    });
  });

  describe("memoize's cache", () => {
    it('show gives each entry as a call: function, arguments, result', async () => {
      const r = await runCli(at('show', 'memoize'));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.not.contain('\u0000');
      const shown = lines(r.stdout).slice(1).map((l) => l.replace(/ {2}\(last used [^)]+\)$/, ''));
      expect(shown).to.deep.equal(["  describe(1, {scale: 'kg'}) => '1 kg'", "  describe(2, {scale: 'g'}) => '2 g'"]);
    });

    it('export --format csv writes one row a call, and no NUL byte', async () => {
      const r = await runCli(at('export', 'memoize', '--format', 'csv'));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.not.contain('\u0000');
      const rows = (parse(r.stdout) as string[][]).map((row) => row.slice(0, 3));
      expect(rows).to.deep.equal([
        ['function', 'arguments', 'result'],
        ['describe', "1, {scale: 'kg'}", '1 kg'],
        ['describe', "2, {scale: 'g'}", '2 g'],
      ]);
    });

    it('CSV export of any cache writes a string holding NUL as a JSON cell', async () => {
      const other = makeTempDir();
      try {
        const manager = new CacheManager('nul', { baseDirectory: other });
        await new PersistentCache('n', { manager, contents: { 'a\u0000b': 'c\u0000d' } }).save();
        await manager.close();
        const r = await runCli(['--dir', manager.cacheDirectory, 'export', 'n', '--format', 'csv']);
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stdout).to.not.contain('\u0000');
        expect(parse(r.stdout)).to.deep.equal([['key', 'value'], ['"a\\u0000b"', '"c\\u0000d"']]);
      } finally {
        removeDir(other);
      }
    });
  });

  describe('exit codes', () => {
    // A full disk, for real: a 1 MiB tmpfs (needs root; skipped elsewhere).
    let disk: string | undefined;
    before(function () {
      if (process.getuid?.() !== 0) return this.skip();
      disk = makeTempDir();
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk], { stdio: 'ignore' });
      } catch {
        removeDir(disk);
        disk = undefined;
        return this.skip();
      }
    });
    after(() => {
      if (disk === undefined) return;
      execFileSync('umount', [disk]);
      removeDir(disk);
    });

    /** Fills what is left of the tmpfs. */
    function fillDisk(): void {
      const fd = fs.openSync(path.join(disk as string, 'filler'), 'w');
      try {
        for (;;) fs.writeSync(fd, Buffer.alloc(4096, 1));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        fs.closeSync(fd);
      }
    }

    it('a write that fails (a full disk) exits 7, in one line; 5 stays for a file that cannot be read', async () => {
      const manager = new CacheManager('full', { baseDirectory: disk as string });
      const big = new PersistentCache<number, string>('big', { manager, contents: {} });
      for (let i = 0; i < 3000; i++) big.set(i, `value ${i} `.repeat(10));
      await big.save();
      big.set(-1, 'appended');
      await big.save();
      await manager.close();
      fillDisk();
      const c = await runCli(['--dir', manager.cacheDirectory, 'compact', 'big']);
      expect(c.code, c.stderr).to.equal(7);
      expect(lines(c.stderr)).to.have.length(1);
      expect(c.stderr).to.match(/^depcache: big: compact failed \(.*\): .*ENOSPC/);
      const e = await runCli(['--dir', manager.cacheDirectory, 'export', 'big', '--format', 'json', '--out', path.join(disk as string, 'out.json')]);
      expect(e.code, e.stderr).to.equal(7);
      expect(lines(e.stderr)).to.have.length(1);
      expect(e.stderr).to.match(/^depcache: .*ENOSPC/);
    });

    it('--help lists the exit codes, 7 among them', async () => {
      const r = await runCli(['--help']);
      expect(r.code).to.equal(0);
      expect(lines(r.stdout)).to.include('  7  a file that cannot be written or removed (a full disk, a read-only file system, no permission)');
    });

    it('a cache file that is not a regular file exits 5', async () => {
      const other = makeTempDir();
      try {
        execFileSync('mkfifo', [path.join(other, 'pipe.v8')]);
        const r = await runCli(['--dir', other, 'show', 'pipe']);
        expect(r.code, r.stderr).to.equal(5);
        expect(lines(r.stderr)).to.have.length(1);
      } finally {
        removeDir(other);
      }
    });
  });
});
