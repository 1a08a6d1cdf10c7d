import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AutoSyncCache, CacheManager, RedisStore } from '../lib';
import { FIXTURES, makeTempDir, removeDir } from './helpers';
import { useRedisServer } from './redis-server';

interface Ended {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Runs the exit fixture: a script that sets 100 entries of a Redis-backed cache and ends as
 * `how` says, never closing its manager. `sigterm` is sent once the entries are set.
 */
function script(url: string, dir: string, how: string, tag: string, extra: string[] = []): Promise<Ended> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(FIXTURES, 'redis-exit.ts'), url, dir, how, tag, ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      if (how === 'sigterm' && d.toString().includes('set')) setTimeout(() => child.kill('SIGTERM'), 100);
    });
    // A script that never ends is the failure this guards against: killed, and reported as such.
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, ms: Date.now() - started });
    });
  });
}

/** Runs a fixture script to its end (killed after 20 s), with what it printed. */
function run(fixture: string, args: string[]): Promise<Ended & { readonly stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(FIXTURES, fixture), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('Redis caches survive the end of the script (real redis-server)', function () {
  this.timeout(60_000);
  const server = useRedisServer();
  let dir: string;

  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(() => removeDir(dir));

  /** What a fresh process finds of the entries tagged `tag`. */
  async function found(tag: string): Promise<number> {
    // The same cache directory as the scripts: a spill left there is replayed by this load.
    const manager = new CacheManager('exits', { baseDirectory: dir });
    manager.on('error', () => undefined); // the unreachable case is checked through the load's rejection
    const store = new RedisStore({ redis: server().url, timeoutMs: 1000 });
    try {
      const cache = store.attach(new AutoSyncCache<string, string>('data', { manager }));
      await cache.load();
      let n = 0;
      for (let i = 0; i < 100; i++) if (cache.get(`${tag}:${i}`) === `${tag}-${i}`) n++;
      return n;
    } finally {
      await manager.close();
      await store.close();
    }
  }

  const spills = () => (fs.existsSync(path.join(dir, 'exits')) ? fs.readdirSync(path.join(dir, 'exits')).filter((f) => f.includes('.redis-spill')) : []);

  for (const how of ['end', 'exit', 'throw', 'reject', 'sigterm'] as const) {
    it(`${how}: the process ends by itself and a fresh process finds every edit`, async () => {
      const ended = await script(server().url, dir, how, how);
      expect(ended.signal, ended.stderr).to.equal(how === 'sigterm' ? 'SIGTERM' : null);
      expect(ended.code, ended.stderr).to.equal({ end: 0, exit: 0, throw: 1, reject: 1, sigterm: null }[how]);
      expect(ended.ms, 'ended by itself, not held open by its connections').to.be.lessThan(15_000);
      expect(await found(how)).to.equal(100);
      expect(spills(), 'a replayed spill is removed').to.deep.equal([]);
    });
  }

  it('with the bus connected too, a script that ends is not held open, and its edits are saved', async () => {
    const ended = await script(server().url, dir, 'end', 'bus', ['bus']);
    expect(ended.code, ended.stderr).to.equal(0);
    expect(ended.ms).to.be.lessThan(15_000);
    expect(await found('bus')).to.equal(100);
  });

  for (const order of ['manager-store', 'store-manager', 'store-store', 'concurrent', 'bus'] as const) {
    it(`closes in the order ${order}: store.close() resolves, the code after it runs, exit 0`, async () => {
      const ended = await run('redis-close-order.ts', [server().url, dir, order]);
      expect(ended.signal, ended.stderr).to.equal(null);
      expect(ended.stdout, ended.stderr).to.contain('after close');
      expect(ended.code, ended.stderr).to.equal(0);
      expect(ended.ms, 'ended by itself').to.be.lessThan(15_000);
      const manager = new CacheManager('close-order', { baseDirectory: dir });
      const store = new RedisStore({ redis: server().url, timeoutMs: 1000 });
      try {
        const cache = await store.open<string, string>('data', { manager });
        expect(cache.get(order), 'the edit made before the closes was saved').to.equal('saved');
      } finally {
        await manager.close();
        await store.close();
      }
    });
  }

  it('Redis down at exit: the edits are spilled, reported, the exit code is 1, and replayed once Redis is back', async () => {
    // The script connects, then Redis goes away before it ends.
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(FIXTURES, 'redis-exit.ts'), server().url, dir, 'end', 'down', 'wait'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('set') && resolve()));
    await server().kill();
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(code, stderr).to.equal(1);
    expect(stderr).to.contain('data');
    expect(spills()).to.have.length(1);
    await server().restart();
    expect(await found('down')).to.equal(100);
    expect(spills()).to.deep.equal([]);
  });

  it('saveOnBlank: false holds at exit too: an emptied cache neither spills nor wipes what is saved', async () => {
    const ended = await script(server().url, dir, 'exit', 'blank', ['blank']);
    expect(ended.code, ended.stderr).to.equal(0);
    expect(spills()).to.deep.equal([]);
    expect(await found('blank')).to.equal(100);
  });

  it('a spill that cannot be replayed (Redis unreachable) stays', async () => {
    const ended = await script(server().url, dir, 'exit', 'kept');
    expect(ended.code).to.equal(0);
    expect(spills()).to.have.length(1);
    await server().kill();
    let failed = false;
    try {
      await found('kept');
    } catch (err) {
      failed = (err as { code?: string }).code === 'EREDIS';
    }
    expect(failed).to.equal(true);
    expect(spills(), 'never dropped').to.have.length(1);
    await server().restart();
    expect(await found('kept')).to.equal(100);
  });
});
