import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CacheManager, type FileStoreOptions, PersistentCache, type Pool } from '../lib';

/** A fresh directory per test; remove it with the returned cleanup. */
export function makeTempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-'));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A manager in its own temp directory, plus a cleanup that closes it and removes the directory. */
export function tempManager(name = 'test'): { manager: CacheManager; dir: string; done: () => Promise<void> } {
  const dir = makeTempDir();
  const manager = new CacheManager(name, { baseDirectory: dir });
  return {
    manager,
    dir,
    done: async () => {
      await manager.close().catch(() => undefined);
      removeDir(dir);
    },
  };
}

/**
 * Gives every test of the calling `describe` a fresh manager in a temp directory, handed to
 * `use` before the test and closed and removed after it.
 */
export function useTempManager(use: (manager: CacheManager) => void, name = 'test'): void {
  let done: (() => Promise<void>) | undefined;
  beforeEach(() => {
    const temp = tempManager(name);
    done = temp.done;
    use(temp.manager);
  });
  afterEach(async () => {
    await done?.();
    done = undefined;
  });
}

/**
 * For the calling `describe`: a fresh temp directory per test, `open()` making managers named
 * `name` (or as told) on it (as separate processes would, each with its own store), all closed and the
 * directory removed after each test. `quiet` swallows their error events.
 */
export function useManagersOnOneDirectory(
  name: string,
  quiet = false,
): {
  open: (managerName?: string, fileStore?: FileStoreOptions) => CacheManager;
  reload: (cacheName: string) => Promise<Map<unknown, unknown>>;
  dir: () => string;
} {
  let dir = '';
  const managers: CacheManager[] = [];
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(async () => {
    for (const m of managers.splice(0)) await m.close().catch(() => undefined);
    removeDir(dir);
  });
  const open = (managerName = name, fileStore?: FileStoreOptions) => {
    const m = new CacheManager(managerName, { baseDirectory: dir, ...(fileStore === undefined ? {} : { fileStore }) });
    if (quiet) m.on('error', () => undefined);
    managers.push(m);
    return m;
  };
  return {
    open,
    /** What a fresh manager loads of `cacheName` (it must be saved). */
    reload: async (cacheName) => {
      const copy = new PersistentCache(cacheName, { manager: open() });
      expect(await copy.load()).to.equal(true);
      return new Map(copy);
    },
    dir: () => dir,
  };
}

/**
 * Closes (at once, leases included) every pool the calling `describe`'s tests pass to the
 * returned `track`, after each test.
 */
export function usePools(): <T>(pool: Pool<T>) => Pool<T> {
  const pools: Array<Pool<unknown>> = [];
  afterEach(async () => {
    for (const p of pools.splice(0)) await p.close({ timeoutMs: 0 });
  });
  return <T>(pool: Pool<T>): Pool<T> => {
    pools.push(pool as Pool<unknown>);
    return pool;
  };
}

/** Awaits `p` and checks it rejects with an instance of `type` (and `code`, when given). */
export async function assertRejects<T extends Error>(
  p: Promise<unknown>,
  type: abstract new (...args: never[]) => T,
  code?: string,
): Promise<T> {
  let settled = false;
  try {
    await p;
    settled = true;
  } catch (err) {
    expect(err).to.be.instanceOf(type);
    if (code !== undefined) expect((err as { code?: string }).code).to.equal(code);
    return err as T;
  }
  expect(settled, `expected a rejection with ${type.name}`).to.equal(false);
  throw new Error('unreachable');
}

/**
 * Runs `fn` with process.emitWarning replaced by a recorder, so a test that expects warnings
 * checks them without printing them into the test output.
 */
export async function captureWarnings<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; warnings: Array<{ message: string; code?: string }> }> {
  const original = process.emitWarning;
  const warnings: Array<{ message: string; code?: string }> = [];
  process.emitWarning = ((warning: string | Error, options?: unknown) => {
    const code = typeof options === 'object' && options !== null ? (options as { code?: string }).code : undefined;
    warnings.push({ message: typeof warning === 'string' ? warning : warning.message, code });
  }) as typeof process.emitWarning;
  try {
    return { result: await fn(), warnings };
  } finally {
    process.emitWarning = original;
  }
}

/** Runs the CLI in this process, capturing what it prints; resolves its exit code and output. */
export async function runCliHere(args: string[]): Promise<{ code: number; out: string; err: string }> {
  // Loaded here, not at the top: most test files never run the CLI.
  const { main } = require('../lib/cli/main') as typeof import('../lib/cli/main');
  let out = '';
  let err = '';
  const write = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((err += chunk), true)) as typeof process.stderr.write;
  try {
    return { code: await main(args), out, err };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

/** A promise resolved or rejected by hand, to control async ordering without delays. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Plain-object view of a map, for deep equality. */
export function entriesOf(map: Map<unknown, unknown>): Record<string, unknown> {
  return Object.fromEntries(map);
}

export const FIXTURES = path.join(__dirname, 'fixtures');

/** Runs a TypeScript fixture in a child Node process; resolves its exit code, signal and output. */
export function runFixture(
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; onSpawn?: (pid: number) => void } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', path.join(FIXTURES, file), ...args],
      { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20000);
    child.on('error', reject);
    child.on('spawn', () => options.onSpawn?.(child.pid as number));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
