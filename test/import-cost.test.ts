// Issue 34: requiring the package changes nothing in the process (no signal or exit listener)
// and loads no optional package; each part loads, and the exit flush arms, when a cache needs it.
// Each check runs in a fresh child: what this test process already loaded would hide it.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTempDir, removeDir } from './helpers';

const LIB = path.join(__dirname, '..', 'lib');
const OPTIONAL = ['proper-lockfile', 'signal-exit', 'pidusage', 'csv-parse', 'csv-stringify', 'commander', 'ioredis'];

interface ProcessState {
  listeners: Record<string, number>;
  packages: string[];
}

// Prints the state of the child after each step the script takes (`report(label)`).
const PRELUDE = `
const report = (label) => {
  const listeners = {};
  for (const e of ['SIGINT', 'SIGTERM', 'SIGHUP', 'exit', 'beforeExit']) listeners[e] = process.listenerCount(e);
  const packages = [...new Set(Object.keys(require.cache)
    .map((f) => /node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)[\\\\/]/.exec(f))
    .filter((m) => m !== null).map((m) => m[1].replace(/\\\\/g, '/')))];
  process.stdout.write(JSON.stringify({ label, listeners, packages }) + '\\n');
};
`;

function runChild(body: string, env: NodeJS.ProcessEnv = {}): Map<string, ProcessState> {
  const script = `${PRELUDE}\n(async () => {\n${body}\n})().catch((err) => { console.error(err); process.exit(2); });`;
  const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  expect(r.status, r.stderr).to.equal(0);
  const states = new Map<string, ProcessState>();
  for (const line of r.stdout.split('\n').filter((l) => l.startsWith('{'))) {
    const { label, ...state } = JSON.parse(line) as ProcessState & { label: string };
    states.set(label, state);
  }
  return states;
}

const NO_LISTENERS = { SIGINT: 0, SIGTERM: 0, SIGHUP: 0, exit: 0, beforeExit: 0 };

describe('import cost (issue 34)', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = makeTempDir();
  });
  after(() => removeDir(dir));

  it('require adds no listener and loads no optional package', () => {
    const states = runChild(`
      report('before');
      require(${JSON.stringify(LIB)});
      report('after');
    `);
    const before = states.get('before') as ProcessState;
    const after = states.get('after') as ProcessState;
    expect(before.listeners).to.deep.equal(NO_LISTENERS);
    expect(after.listeners).to.deep.equal(NO_LISTENERS);
    for (const name of OPTIONAL) expect(after.packages, name).to.not.include(name);
  });

  it('loads only the core: the optional parts load with the first read of their name, and are the same classes', () => {
    const parts = ['redis/redis-store', 'redis/bus', 'pool/pool', 'memoize/memoize', 'text-caches', 'store/file-store'];
    const states = runChild(`
      const lib = require(${JSON.stringify(LIB)});
      const loaded = () => ${JSON.stringify(parts)}.filter((p) => require.cache[require.resolve(${JSON.stringify(LIB)} + '/' + p)] !== undefined);
      process.stdout.write(JSON.stringify({ label: 'after require', listeners: {}, packages: loaded() }) + '\\n');
      const same = lib.RedisStore === require(${JSON.stringify(LIB)} + '/redis/redis-store').RedisStore && lib.Pool === require(${JSON.stringify(LIB)} + '/pool/pool').Pool
        && typeof lib.memoize === 'function' && typeof lib.JsonCache === 'function' && typeof lib.connectBus === 'function';
      new lib.CacheManager('parts', { baseDirectory: ${JSON.stringify(dir)} });
      process.stdout.write(JSON.stringify({ label: 'after use', listeners: {}, packages: same ? loaded() : ['not the same classes'] }) + '\\n');
    `);
    expect(states.get('after require')?.packages).to.deep.equal([]);
    expect(states.get('after use')?.packages).to.have.members(parts);
  });

  it('memory-only caches arm nothing; a persistent cache with an edit arms the exit flush', () => {
    const states = runChild(`
      const { CacheManager, LazyCache, NonPersistentCache, PersistentCache } = require(${JSON.stringify(LIB)});
      const manager = new CacheManager('arm', { baseDirectory: ${JSON.stringify(dir)} });
      const memory = await NonPersistentCache.open('memory', { manager });
      memory.set('a', 1);
      const lazy = await LazyCache.open('lazy', { manager, builder: () => new Map([['b', 2]]) });
      lazy.get('b');
      report('memory only');
      const cache = await PersistentCache.open('scores', { manager });
      cache.set('alice', 3);
      report('persistent edit');
      await manager.close();
    `);
    const memoryOnly = states.get('memory only') as ProcessState;
    expect(memoryOnly.listeners).to.deep.equal(NO_LISTENERS);
    for (const name of OPTIONAL) expect(memoryOnly.packages, name).to.not.include(name);
    const armed = states.get('persistent edit') as ProcessState;
    // No beforeExit: no cache here saves asynchronously.
    expect(armed.packages).to.include('signal-exit');
    // signal-exit 4: one listener per signal. The manifest written meanwhile took a file lock,
    // and proper-lockfile brings signal-exit 3's own: that happens with the first write, not before.
    const lockListeners = armed.packages.includes('proper-lockfile') ? 1 : 0;
    expect(armed.listeners.SIGINT).to.equal(1 + lockListeners);
    expect(armed.listeners.SIGTERM).to.equal(1 + lockListeners);
    expect(armed.listeners.SIGHUP).to.equal(1 + lockListeners);
    expect(armed.listeners.beforeExit).to.equal(0);
  });

  it('a custom saver arms the exit flush and the asynchronous save', () => {
    const states = runChild(`
      const { CacheManager, NonPersistentCache } = require(${JSON.stringify(LIB)});
      const manager = new CacheManager('saver', { baseDirectory: ${JSON.stringify(dir)} });
      await NonPersistentCache.open('remote', { manager, saver: async () => undefined });
      report('custom saver');
      await manager.close();
    `);
    const state = states.get('custom saver') as ProcessState;
    expect(state.packages).to.include('signal-exit');
    expect(state.listeners.beforeExit).to.equal(1);
    // signal-exit's listener and the one that awaits the saver first.
    expect(state.listeners.SIGINT).to.equal(2);
  });

  it('each optional package loads with the first use of its part', () => {
    const states = runChild(`
      const { CacheManager, CsvCache, PersistentCache } = require(${JSON.stringify(LIB)});
      const manager = new CacheManager('parts', { baseDirectory: ${JSON.stringify(dir)} });
      await manager.stats();
      report('stats');
      const csv = await CsvCache.open('prices', { manager });
      csv.set('a', '1');
      await csv.save();
      report('csv');
      const cache = await PersistentCache.open('locked', { manager });
      cache.set('a', 1);
      await cache.save();
      await manager.close();
      report('lock');
    `);
    expect((states.get('stats') as ProcessState).packages).to.include('pidusage');
    expect((states.get('stats') as ProcessState).packages).to.not.include('csv-stringify');
    expect((states.get('csv') as ProcessState).packages).to.include.members(['csv-stringify']);
    expect((states.get('lock') as ProcessState).packages).to.include('proper-lockfile');
    for (const state of states.values()) {
      expect(state.packages).to.not.include('commander');
      expect(state.packages).to.not.include('ioredis');
    }
  });
});

describe('DEPCACHE_DIR (issue 34)', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = makeTempDir();
  });
  after(() => removeDir(dir));

  // The variable is read when a manager is made: each case runs in a child that starts with it.
  function directories(value: string | undefined): { env: string; explicit: string; temp: string } {
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (value === undefined) delete env.DEPCACHE_DIR;
    else env.DEPCACHE_DIR = value;
    const script = `
      const { CacheManager, PersistentCache } = require(${JSON.stringify(LIB)});
      const { userTempDirectory } = require(${JSON.stringify(path.join(LIB, 'store', 'safe-directory'))});
      (async () => {
        const fromEnv = new CacheManager('m');
        const cache = await PersistentCache.open('envcache', { manager: fromEnv });
        cache.set('k', 1);
        await fromEnv.close();
        const explicit = new CacheManager('m', { baseDirectory: ${JSON.stringify(path.join(dir, 'explicit'))} });
        process.stdout.write(JSON.stringify({ env: fromEnv.cacheDirectory, explicit: explicit.cacheDirectory, temp: userTempDirectory() }));
      })().catch((err) => { console.error(err); process.exit(2); });
    `;
    const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], { encoding: 'utf8', env, timeout: 60_000 });
    expect(r.status, r.stderr).to.equal(0);
    return JSON.parse(r.stdout) as { env: string; explicit: string; temp: string };
  }

  it('sets the base directory of managers made without one, and their caches are saved there', () => {
    const base = path.join(dir, 'from-env');
    const got = directories(base);
    expect(got.env).to.equal(path.join(base, 'm'));
    expect(fs.existsSync(path.join(base, 'm', 'envcache.v8'))).to.equal(true);
    expect(got.explicit).to.equal(path.join(dir, 'explicit', 'm')); // baseDirectory still wins
  });

  it('is resolved against the working directory when relative', () => {
    const got = directories(path.relative(process.cwd(), path.join(dir, 'relative')));
    expect(got.env).to.equal(path.join(dir, 'relative', 'm'));
  });

  it('is ignored when empty or unset: the per-user temp directory', () => {
    for (const value of ['', undefined]) {
      const got = directories(value);
      expect(got.env, String(value)).to.equal(path.join(got.temp, 'm'));
    }
  });

  it('is where the CLI looks without --dir', () => {
    const base = path.join(dir, 'from-env');
    directories(base);
    const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(LIB, 'cli', 'main.ts'), 'list', '--manager', 'm'], {
      encoding: 'utf8',
      env: { ...process.env, DEPCACHE_DIR: base },
      timeout: 60_000,
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^envcache\b/m);
  });
});
