import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CacheManager, JsonCache, PersistentCache, memoize } from '../lib';
import { type GraphModel, renderGraph } from '../lib/graph-render';
import { ProgressThrottle } from '../lib/progress';
import { makeTempDir, removeDir } from './helpers';

const CLI = path.join(__dirname, '..', 'lib', 'cli', 'main.ts');

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function hasDot(): boolean {
  try {
    execFileSync('dot', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A structural check of Mermaid flowchart text: the header, then node lines `id["label"]` and
 * edges between declared ids only, labels without a raw quote, class lines naming declared ids.
 */
function checkMermaid(text: string): { nodes: Map<string, string>; edges: Array<[string, string, boolean]> } {
  const lines = text.split('\n');
  expect(lines[0]).to.equal('flowchart LR');
  const nodes = new Map<string, string>();
  const edges: Array<[string, string, boolean]> = [];
  for (const line of lines.slice(1)) {
    let m: RegExpExecArray | null;
    if ((m = /^ {2}(n\d+)\["([^"]*)"\]$/.exec(line))) nodes.set(m[1] as string, m[2] as string);
    else if ((m = /^ {2}(n\d+) --> (n\d+)$/.exec(line))) edges.push([m[1] as string, m[2] as string, false]);
    else if ((m = /^ {2}(n\d+) -\. inputs \.-> (n\d+)$/.exec(line))) edges.push([m[1] as string, m[2] as string, true]);
    else if (/^ {2}classDef corrupt [^\s]+$/.test(line)) continue;
    else if ((m = /^ {2}class ((?:n\d+,?)+) corrupt$/.exec(line))) for (const id of (m[1] as string).split(',')) expect(nodes.has(id), line).to.equal(true);
    else expect.fail(`not a line of the flowchart: ${JSON.stringify(line)}`);
  }
  for (const [a, b] of edges) expect(nodes.has(a) && nodes.has(b), `${a} -> ${b}`).to.equal(true);
  return { nodes, edges };
}

const sample: GraphModel = {
  manager: 'etl "prod"',
  nodes: [
    { name: 'raw', kind: 'AutoSyncCache', entries: 1200, savedAt: '2026-11-23T10:00:00.000Z' },
    { name: 'clean <v2>', kind: 'PersistentCache', entries: 3, corrupt: true },
    { name: 'report "eu"', kind: 'JsonCache' },
    { name: 'memo', kind: 'AutoSyncCache', inputs: ['raw'] },
  ],
  dependents: { raw: ['clean <v2>'], 'clean <v2>': ['report "eu"'] },
};

describe('the dependency graph as a picture', function () {
  this.timeout(60_000);

  it('DOT output renders with Graphviz (dot -Tsvg), names quoted, corrupt caches marked', function () {
    const dot = renderGraph(sample, 'dot');
    expect(dot).to.contain('"raw" -> "clean <v2>";');
    expect(dot).to.contain('"report \\"eu\\""');
    expect(dot).to.match(/"clean <v2>" \[label="[^\]]*FAILS VERIFY", color=red, penwidth=3\]/);
    expect(dot).to.contain('"raw" -> "memo" [style=dashed, label="inputs"];');
    if (!hasDot()) {
      if (process.env.CI) throw new Error('dot (Graphviz) is not installed');
      this.skip();
    }
    const svg = execFileSync('dot', ['-Tsvg'], { input: dot, encoding: 'utf8' });
    expect(svg).to.contain('<svg');
    for (const name of ['raw', 'clean &lt;v2&gt;', 'report &quot;eu&quot;', 'memo']) expect(svg).to.contain(name);
  });

  it('Mermaid output is a well-formed flowchart: every cache, every edge, corrupt caches classed', () => {
    const { nodes, edges } = checkMermaid(renderGraph(sample, 'mermaid'));
    const byLabel = new Map([...nodes].map(([id, label]) => [label.split('<br/>')[0], id]));
    expect([...byLabel.keys()].sort()).to.deep.equal(['clean #lt;v2#gt;', 'memo', 'raw', 'report #quot;eu#quot;']);
    expect(edges).to.deep.include.members([
      [byLabel.get('raw'), byLabel.get('clean #lt;v2#gt;'), false],
      [byLabel.get('clean #lt;v2#gt;'), byLabel.get('report #quot;eu#quot;'), false],
      [byLabel.get('raw'), byLabel.get('memo'), true],
    ]);
    expect(nodes.get(byLabel.get('raw') as string)).to.contain('AutoSyncCache · 1,200 entries<br/>saved 2026-11-23 10:00:00Z');
  });

  it('manager.graph() gives the same text from a live manager, memoize caches and their inputs included', async () => {
    const base = makeTempDir();
    const manager = new CacheManager('live', { baseDirectory: base });
    try {
      const raw = new PersistentCache<string, number>('raw', { manager, contents: { a: 1, b: 2 } });
      await raw.save();
      await manager.registerDependentCache('raw', 'cleaned');
      new PersistentCache('cleaned', { manager, contents: {} });
      const total = memoize((x: number) => x + (raw.get('a') ?? 0), { manager, name: 'total', dependsOn: ['raw'] });
      await total(1);
      const mermaid = manager.graph({ format: 'mermaid' });
      const { nodes, edges } = checkMermaid(mermaid);
      const labels = [...nodes.values()].map((l) => l.split('<br/>')[0]);
      expect(labels).to.include.members(['raw', 'cleaned', 'memoize']); // memoized results live in 'memoize'
      expect(edges.some(([, , inputs]) => inputs)).to.equal(true);
      expect(manager.graph()).to.match(/raw \(PersistentCache\)\n\s+└ cleaned \(PersistentCache\)/);
      expect(JSON.parse(manager.graph({ format: 'json' })).dependents).to.deep.equal({ raw: ['cleaned'] });
      expect(() => manager.graph({ format: 'svg' as 'dot' })).to.throw(TypeError, /format/);
    } finally {
      await manager.close();
      removeDir(base);
    }
  });

  it('depcache graph --format dot|mermaid reads the manifest and the files, marking a corrupt one', async () => {
    const base = makeTempDir();
    const manager = new CacheManager('g', { baseDirectory: base });
    await new PersistentCache('raw', { manager, contents: { a: 1 } }).save();
    await new JsonCache('report', { manager, contents: { x: 1 } }).save();
    await manager.registerDependentCache('raw', 'report');
    await manager.close();
    const file = path.join(manager.cacheDirectory, 'raw.v8');
    const bytes = fs.readFileSync(file);
    bytes.writeUInt8((bytes.readUInt8(bytes.length - 20) ^ 0xff) & 0xff, bytes.length - 20);
    fs.writeFileSync(file, bytes);
    try {
      const at = ['--dir', manager.cacheDirectory, 'graph'];
      const mermaid = cli([...at, '--format', 'mermaid']);
      expect(mermaid.code, mermaid.stderr).to.equal(0);
      const { nodes } = checkMermaid(mermaid.stdout.trimEnd());
      expect([...nodes.values()].find((l) => l.startsWith('raw'))).to.contain('FAILS VERIFY');
      expect(mermaid.stdout).to.match(/class n\d+ corrupt/);
      const dot = cli([...at, '--format', 'dot']);
      expect(dot.code, dot.stderr).to.equal(0);
      if (hasDot()) expect(execFileSync('dot', ['-Tsvg'], { input: dot.stdout, encoding: 'utf8' })).to.contain('<svg');
      expect(cli([...at, '--format', 'png']).code).to.equal(2);
    } finally {
      removeDir(base);
    }
  });
});

describe('progress of long work', function () {
  this.timeout(60_000);

  it('is silent for work shorter than the threshold, throttled, monotonic, and ends at total', () => {
    let now = 0;
    const events: Array<[number, number]> = [];
    const short = new ProgressThrottle(100, (d, t) => events.push([d, t]), () => now, 1000, 250);
    for (let i = 1; i <= 100; i++) {
      now += 5; // 500 ms in all
      short.update(i);
    }
    short.finish();
    expect(events).to.deep.equal([]);

    now = 0;
    const long = new ProgressThrottle(1000, (d, t) => events.push([d, t]), () => now, 1000, 250);
    for (let i = 1; i <= 1000; i++) {
      now += 3; // 3 s in all
      long.update(i);
    }
    long.finish();
    const done = events.map(([d]) => d);
    expect(done.length).to.be.within(4, 10); // from 1 s on, four a second
    expect(done).to.deep.equal([...done].sort((a, b) => a - b));
    expect(events.every(([, t]) => t === 1000)).to.equal(true);
    expect(done[done.length - 1]).to.equal(1000);
    expect(new Set(done).size).to.equal(done.length);
  });

  it('a file store reports loads, saves and compactions in entries, monotonic, ending at total', async () => {
    const base = makeTempDir();
    const manager = new CacheManager('p', { baseDirectory: base, fileStore: { frameEntries: 100, compactShare: 100 } });
    const seen: Array<{ op: string; updates: number[]; total: number; finished: boolean }> = [];
    manager.store.progress = (_cache, op, total) => {
      const entry = { op, updates: [] as number[], total, finished: false };
      seen.push(entry);
      return { update: (d) => entry.updates.push(d), finish: () => (entry.finished = true) };
    };
    try {
      const contents = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i]));
      const cache = new PersistentCache<string, number>('c', { manager, contents });
      await cache.save();
      cache.set('k1', -1);
      await cache.save(); // appended: a journal record, no progress
      await cache.load();
      await cache.compact();
      expect(seen.map((s) => s.op)).to.deep.equal(['save', 'load', 'load', 'compact']);
      for (const s of seen.filter((x) => x.total > 0)) {
        expect(s.finished, s.op).to.equal(true);
        expect(s.updates, s.op).to.deep.equal([...s.updates].sort((a, b) => a - b));
        expect(s.updates[s.updates.length - 1], s.op).to.equal(s.total);
      }
      // Memory is the saved state here: the new file is written from it (1000 entries).
      expect(seen.find((s) => s.op === 'compact')?.total).to.equal(1000);
    } finally {
      await manager.close();
      removeDir(base);
    }
  });

  it("the manager emits 'progress' events only when someone listens", async () => {
    const base = makeTempDir();
    const manager = new CacheManager('p2', { baseDirectory: base });
    try {
      expect(manager.store.progress('c', 'save', 10)).to.equal(undefined);
      const events: unknown[] = [];
      manager.on('progress', (e) => events.push(e));
      expect(manager.store.progress('c', 'save', 10)).to.not.equal(undefined);
    } finally {
      await manager.close();
      removeDir(base);
    }
  });

  it('the CLI prints one line per step without carriage returns when not on a terminal', async () => {
    const base = makeTempDir();
    const manager = new CacheManager('p3', { baseDirectory: base });
    const contents = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, { i }]));
    const cache = new PersistentCache('big', { manager, contents });
    await cache.save();
    cache.set('k1', { i: -1 });
    await cache.save();
    await manager.close();
    try {
      const env = { DEPCACHE_PROGRESS_AFTER_MS: '0' };
      for (const args of [['verify'], ['export', 'big', '--format', 'csv'], ['compact', 'big']]) {
        const r = cli(['--dir', manager.cacheDirectory, ...args], env);
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stderr, args[0]).to.not.contain('\r');
        const lines = r.stderr.trim().split('\n');
        expect(lines.length, args[0]).to.be.greaterThan(0);
        expect(lines[lines.length - 1], args[0]).to.match(/: 100% \(/);
      }
      // Without the override, short work says nothing.
      expect(cli(['--dir', manager.cacheDirectory, 'verify']).stderr).to.equal('');
    } finally {
      removeDir(base);
    }
  });
});
