import { type ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CacheManager, PersistentCache, RedisStore, connectBus } from '../lib';
import { Samples } from '../lib/pool/samples';
import { redisServerPath, startRedis } from '../test/redis-server';
import { probe } from './stall';
import { median } from './stats';
import { makeEntries } from './workload';

export interface RedisFigures {
  readonly saveChangedMs: number;
  readonly followMs: number;
  /** A snapshot of the whole cache written in the background: how long, and the longest event-loop stall meanwhile. */
  readonly snapshotMs: number;
  readonly snapshotStallMs: number;
  /** A save of 20% of the keys changed: how long, and the longest event-loop stall meanwhile. */
  readonly changedSave: { stallMs: number; totalMs: number };
  readonly loads: Array<{ entries: number; redisMs: number; fileMs: number }>;
  readonly bus: BusLatency;
}

/** How long an invalidation takes from the call in one process to a dependent in others. */
export interface BusLatency {
  readonly listeners: number;
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Redis figures against a server started for the bench; undefined when redis-server is missing. */
export async function redisBench(runs: number, bigEntries: number): Promise<RedisFigures | undefined> {
  const bin = redisServerPath();
  if (!bin) return undefined;
  const server = await startRedis(bin);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-redis-bench-'));
  const manager = new CacheManager('bench', { baseDirectory: dir });
  const store = new RedisStore({ redis: server.url });
  try {
    // First, while this process is quiet: the bus, across processes.
    const bus = await busLatency(server.url, Math.min(500, 40 * Math.max(3, runs)), dir);
    // Save of 10 changed entries in a large cache: only the changes travel.
    const big = store.attach(new PersistentCache<string, unknown>('big', { manager, contents: makeEntries(bigEntries) }));
    await big.save();
    await big.backgroundSettled(); // its first snapshot, written after that save
    const saves: number[] = [];
    for (let run = -1; run < runs; run++) {
      for (let i = 0; i < 10; i++) big.set(`key-${(run + 2) * 1000 + i}`, { changed: run });
      const start = performance.now();
      await big.save();
      if (run >= 0) saves.push(performance.now() - start);
    }
    // A follower's cost per remote save of 10 keys: what the save announced, applied by another
    // manager holding the same 1M entries (HMGET of the 10 fields and a key-by-key merge).
    let announced: unknown;
    manager.attachBus({ followSaves: false, publish: (_op, _cache, _cascade, detail) => (announced = detail), close: async () => undefined });
    const followerDir = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-redis-follower-'));
    const follower = new CacheManager('bench', { baseDirectory: followerDir });
    const copy = store.attach(new PersistentCache<string, unknown>('big', { manager: follower }));
    await copy.load();
    const follows: number[] = [];
    for (let run = -1; run < runs; run++) {
      for (let i = 0; i < 10; i++) big.set(`key-${(run + 20) * 1000 + i}`, { followed: run });
      await big.save();
      const start = performance.now();
      await follower.applyRemote({ op: 'save', cache: 'big', cascade: false, detail: announced });
      if (run >= 0) follows.push(performance.now() - start);
      if ((copy.get(`key-${(run + 20) * 1000}`) as { followed?: number } | undefined)?.followed !== run) throw new Error('not followed');
    }
    await follower.close();
    fs.rmSync(followerDir, { recursive: true, force: true });

    // A new snapshot, due once the changes since the last pass 10% of it: written after the save
    // that passed it, in the background.
    const snapshots: Array<{ stallMs: number; totalMs: number }> = [];
    for (let run = 0; run < Math.max(1, Math.ceil(runs / 2)); run++) {
      for (let i = 0; i < bigEntries * 0.11; i++) big.set(`key-${i}`, { snapshot: run, i });
      await big.save();
      snapshots.push(await probe(() => big.backgroundSettled()));
    }

    // A save of 20% of the keys, changed: encoded a part at a time while the loop turns.
    const changedSaves: Array<{ stallMs: number; totalMs: number }> = [];
    for (let run = 0; run < Math.max(1, Math.ceil(runs / 2)); run++) {
      for (let i = 0; i < bigEntries * 0.2; i++) big.set(`key-${i}`, { changed: run, i });
      changedSaves.push(await probe(() => big.save()));
      await big.backgroundSettled(); // the snapshot it may start is measured above, not here
    }

    // Full loads: Redis (its snapshot and the changes logged since) against the v8 file store, same entries.
    const loads: RedisFigures['loads'] = [];
    for (const n of [100_000, bigEntries]) {
      const rows = n === bigEntries ? big : makeEntries(n);
      const inRedis = n === bigEntries ? big : store.attach(new PersistentCache<string, unknown>('load', { manager, contents: rows }));
      await inRedis.save();
      await inRedis.backgroundSettled(); // the snapshot that save started: loads read it
      const inFile = new PersistentCache<string, unknown>(`load-file-${n}`, { manager, contents: new Map(rows) });
      await inFile.save();
      const redisLoads: number[] = [];
      const fileLoads: number[] = [];
      for (let run = -1; run < runs; run++) {
        let start = performance.now();
        await inRedis.load();
        const r = performance.now() - start;
        start = performance.now();
        await inFile.load();
        const f = performance.now() - start;
        if (inRedis.size !== n || inFile.size !== n) throw new Error('lost entries');
        if (run >= 0) {
          redisLoads.push(r);
          fileLoads.push(f);
        }
      }
      loads.push({ entries: n, redisMs: median(redisLoads), fileMs: median(fileLoads) });
      if (n !== bigEntries) await manager.deregisterCache('load');
      await manager.deregisterCache(`load-file-${n}`);
    }
    return {
      saveChangedMs: median(saves),
      followMs: median(follows),
      snapshotMs: median(snapshots.map((r) => r.totalMs)),
      snapshotStallMs: median(snapshots.map((r) => r.stallMs)),
      changedSave: { stallMs: median(changedSaves.map((r) => r.stallMs)), totalMs: median(changedSaves.map((r) => r.totalMs)) },
      loads,
      bus,
    };
  } finally {
    await manager.close();
    await store.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `count` invalidations of `src`, one every 10 ms, from this process to two listener processes
 * (bench/bus-listener.ts), each holding `src` and its dependent `dep`: the time from the
 * `invalidateCache` call here to `dep`'s reload there, on the machine's monotonic clock.
 */
async function busLatency(url: string, count: number, dir: string): Promise<BusLatency> {
  const script = path.join(__dirname, `bus-listener${path.extname(__filename)}`);
  const reached: bigint[][] = [[], []];
  const listeners: ChildProcess[] = [];
  const sender = new CacheManager('latency', { baseDirectory: path.join(dir, 'sender') });
  try {
    await withTimeout(
      Promise.all(
        reached.map((times, i) => {
          const child = fork(script, [url, path.join(dir, `listener-${i}`)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
          listeners.push(child);
          return new Promise<void>((resolve, reject) => {
            child.on('message', (message: unknown) => {
              if (message === 'ready') resolve();
              else times.push(BigInt((message as { reached: string }).reached));
            });
            child.once('exit', (code) => reject(new Error(`a bus listener exited (${code}) before it was ready`)));
          });
        }),
      ),
      30_000,
      'the bus listeners to start',
    );
    const src = new PersistentCache<string, number>('src', { manager: sender, contents: new Map([['a', 1]]) });
    new PersistentCache<string, number>('dep', { manager: sender, contents: new Map([['b', 2]]) });
    await sender.registerDependentCache('src', 'dep');
    await src.save();
    const bus = await connectBus(sender, url);
    const sent: bigint[] = [];
    for (let i = 0; i < count; i++) {
      sent.push(process.hrtime.bigint());
      await sender.invalidateCache('src');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const deadline = performance.now() + 30_000;
    while (reached.some((times) => times.length < count)) {
      if (performance.now() > deadline) throw new Error(`the listeners saw ${reached.map((t) => t.length).join(' and ')} of ${count} invalidations in 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await bus.close();
    const latencies = new Samples(); // the pool's percentiles: it keeps 1024, more than arrive here
    for (const times of reached) times.forEach((at, i) => latencies.add(Number(at - (sent[i] as bigint)) / 1e6));
    const { p50, p99, max, samples } = latencies.percentiles();
    return { listeners: reached.length, samples, p50Ms: p50, p99Ms: p99, maxMs: max };
  } finally {
    for (const child of listeners) if (child.connected) child.send('stop');
    const exited = Promise.all(listeners.map((child) => (child.exitCode !== null || child.signalCode !== null ? undefined : new Promise((resolve) => child.once('exit', resolve)))));
    await withTimeout(exited, 10_000, 'the bus listeners to exit').catch(() => listeners.forEach((child) => child.kill('SIGKILL')));
    await sender.close();
  }
}

/** `promise`, or a rejection naming what was awaited after `ms`: the bench never hangs. */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`waited ${ms / 1000} s for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
