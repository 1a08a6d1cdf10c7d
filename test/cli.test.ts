import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CacheManager, JsonCache, PersistentCache } from '../lib';
import { fromJsonSafe } from '../lib/store/json-safe';
import { parse } from 'csv-parse/sync';
import { makeTempDir, removeDir } from './helpers';

const CLI = path.join(__dirname, '..', 'lib', 'cli', 'main.ts');

function runCli(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', CLI, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

describe('depcache CLI', function () {
  this.timeout(60000);
  let base: string;
  let dir: string;

  before(async () => {
    base = makeTempDir();
    const manager = new CacheManager('cli', { baseDirectory: base });
    dir = manager.cacheDirectory;
    const users = new PersistentCache<string, unknown>('users', { manager, contents: {} });
    users.set('ada', { name: 'Ada', since: new Date(0), visits: 3n, tags: new Set(['x']) });
    users.set('bob', { name: 'Bob, "the builder"', since: new Date(1000), visits: 1n, tags: new Set() });
    users.set('cy', new Map([['nested', [1, 2]]]));
    await users.save();
    const fancy = new PersistentCache('Fancy Name!', { manager, contents: { a: 1 } });
    await fancy.save();
    for (const name of ['raw', 'cleaned']) await new PersistentCache(name, { manager, contents: { [name]: 1 } }).save();
    await new JsonCache('report', { manager, contents: { FR: { orders: 2, revenue: 30 } } }).save();
    await manager.registerDependentCache('raw', 'cleaned');
    await manager.registerDependentCache('cleaned', 'report');
    await manager.close(); // writes the manifest
  });
  after(() => removeDir(base));

  const at = (...args: string[]) => ['--dir', dir, ...args];

  describe('list', () => {
    it('lists every cache by its real name, with entries, bytes and verification', async () => {
      const r = await runCli(at('list', '--json'));
      expect(r.code, r.stderr).to.equal(0);
      const caches = JSON.parse(r.stdout) as Array<{ name: string; entries: number; bytes: number; verifies: boolean; format: string }>;
      const byName = Object.fromEntries(caches.map((c) => [c.name, c]));
      expect(Object.keys(byName).sort()).to.deep.equal(['Fancy Name!', 'cleaned', 'raw', 'report', 'users']);
      expect(byName.users).to.include({ entries: 3, verifies: true, format: 'v8' });
      expect(byName.report).to.include({ format: 'json', verifies: true });
      expect(byName.users?.bytes).to.be.greaterThan(0);
    });

    it('prints a table', async () => {
      const r = await runCli(at('list'));
      expect(r.stdout).to.match(/^NAME\s+ENTRIES/);
      expect(r.stdout).to.contain('Fancy Name!');
    });

    it('finds the directory of a manager by name', async () => {
      const r = await runCli(['--manager', 'depcache-cli-no-such-manager', 'list']);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.contain('no cache directory');
    });
  });

  describe('show', () => {
    it('shows the first entries readably, and how many more', async () => {
      const r = await runCli(at('show', 'users', '--limit', '2'));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.contain('users: 3 entries');
      expect(r.stdout).to.contain("'ada' =>");
      expect(r.stdout).to.contain('1970-01-01T00:00:00.000Z');
      expect(r.stdout).to.contain('3n');
      expect(r.stdout).to.contain('… and 1 more');
    });

    it('shows entries as JSON that keeps types', async () => {
      const r = await runCli(at('show', 'users', '--json', '--limit', '3'));
      const body = JSON.parse(r.stdout) as { entries: number; shown: Array<[unknown, unknown]>; more: number };
      expect(body.entries).to.equal(3);
      expect(body.more).to.equal(0);
      const cy = fromJsonSafe(body.shown[2]?.[1]) as Map<string, number[]>;
      expect(cy.get('nested')).to.deep.equal([1, 2]);
    });

    it('exits 3 for an unknown cache and 2 for a missing directory', async () => {
      expect((await runCli(at('show', 'nope'))).code).to.equal(3);
      expect((await runCli(['--dir', path.join(base, 'missing'), 'list'])).code).to.equal(2);
    });
  });

  describe('export and import', () => {
    it('exports JSON that imports back with types intact', async () => {
      const file = path.join(base, 'users.json');
      const e = await runCli(at('export', 'users', '--format', 'json', '--out', file));
      expect(e.code, e.stderr).to.equal(0);
      const i = await runCli(at('import', 'users-copy', file));
      expect(i.code, i.stderr).to.equal(0);
      const manager = new CacheManager('cli', { baseDirectory: base });
      const copy = await PersistentCache.open<string, { since: Date; visits: bigint }>('users-copy', { manager });
      expect(copy.get('ada')?.since).to.be.instanceOf(Date);
      expect(copy.get('ada')?.visits).to.equal(3n);
      await manager.close();
    });

    it('exports CSV with quoting, one column per field of flat values', async () => {
      const r = await runCli(at('export', 'report', '--format', 'csv'));
      expect(r.stdout.split('\n')[0]).to.equal('key,orders,revenue');
      const u = await runCli(at('export', 'users', '--format', 'csv'));
      const rows = parse(u.stdout) as string[][];
      expect(rows[0]).to.deep.equal(['key', 'value']);
      // Commas and quotes inside a cell survive CSV quoting; non-flat values are JSON cells.
      const bob = fromJsonSafe(JSON.parse(rows.find((r) => r[0] === 'bob')?.[1] as string)) as { name: string };
      expect(bob.name).to.equal('Bob, "the builder"');
    });

    it('imports CSV with a header row', async () => {
      const file = path.join(base, 'in.csv');
      fs.writeFileSync(file, 'key,city,zip\n"a,1",Paris,75001\nb,"New\nYork",10001\n');
      const r = await runCli(at('import', 'places', file));
      expect(r.code, r.stderr).to.equal(0);
      const s = await runCli(at('show', 'places', '--json'));
      const body = JSON.parse(s.stdout) as { shown: Array<[string, { city: string }]> };
      expect(body.shown.map(([k]) => k)).to.deep.equal(['a,1', 'b']);
      expect(body.shown[1]?.[1].city).to.equal('New\nYork');
    });
  });

  describe('graph and invalidate', () => {
    it('prints the dependency graph from the manifest', async () => {
      const r = await runCli(at('graph'));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/raw \(PersistentCache\)\n\s+└ cleaned \(PersistentCache\)\n\s+└ report \(JsonCache\)/);
      const j = JSON.parse((await runCli(at('graph', '--json'))).stdout) as { dependents: Record<string, string[]> };
      expect(j.dependents).to.deep.include({ raw: ['cleaned'], cleaned: ['report'] });
    });

    it('deletes the saved content of a cache and its dependents', async () => {
      const r = await runCli(at('invalidate', 'cleaned', '--json'));
      expect(r.code, r.stderr).to.equal(0);
      expect(JSON.parse(r.stdout)).to.deep.equal([
        { cache: 'cleaned', file: 'cleaned.v8' },
        { cache: 'report', file: 'report.json' },
      ]);
      expect(fs.existsSync(path.join(dir, 'raw.v8'))).to.equal(true);
      expect(fs.existsSync(path.join(dir, 'cleaned.v8'))).to.equal(false);
      expect((await runCli(at('invalidate', 'nothing-like-it'))).code).to.equal(3);
    });
  });

  describe('verify, rm and clean', () => {
    it('exits 1 naming a corrupt file, which show refuses with exit 4', async () => {
      const file = path.join(dir, 'raw.v8');
      const bytes = fs.readFileSync(file);
      bytes[bytes.length - 30] = (bytes[bytes.length - 30] as number) ^ 0xff;
      fs.writeFileSync(file, bytes);
      const v = await runCli(at('verify'));
      expect(v.code).to.equal(1);
      expect(v.stdout).to.contain('CORRUPT raw.v8');
      expect((await runCli(at('show', 'raw'))).code).to.equal(4);
      const list = JSON.parse((await runCli(at('list', '--json'))).stdout) as Array<{ name: string; verifies: boolean }>;
      expect(list.find((c) => c.name === 'raw')?.verifies).to.equal(false);
    });

    it('refuses to remove without --yes when it cannot ask, and removes with it', async () => {
      const r = await runCli(at('rm', 'Fancy Name!'));
      expect(r.code).to.equal(2);
      const listed = (await runCli(at('list', '--json'))).stdout;
      expect(listed).to.contain('Fancy Name!');
      const y = await runCli(at('rm', 'Fancy Name!', '--yes'));
      expect(y.code, y.stderr).to.equal(0);
      expect((await runCli(at('list', '--json'))).stdout).to.not.contain('Fancy Name!');
    });

    it('cleans stale temp files, and quarantined files with --corrupt', async () => {
      fs.writeFileSync(path.join(dir, '.users.v8.999999.0badc0de.tmp'), 'x');
      fs.writeFileSync(path.join(dir, 'users.v8.corrupt-1700000000000'), 'x');
      const r = await runCli(at('clean'));
      expect(r.stdout).to.contain('.users.v8.999999.0badc0de.tmp');
      expect(fs.existsSync(path.join(dir, 'users.v8.corrupt-1700000000000'))).to.equal(true);
      await runCli(at('clean', '--corrupt'));
      expect(fs.existsSync(path.join(dir, 'users.v8.corrupt-1700000000000'))).to.equal(false);
    });
  });
});
