import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CacheManager, PersistentCache, RedisStore } from '../lib';
import { redisServerPath, startRedis } from '../test/redis-server';
import { median } from './stats';
import { makeEntries } from './workload';

export interface RedisFigures {
  readonly saveChangedMs: number;
  readonly loadRedisMs: number;
  readonly loadFileMs: number;
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
    // Save of 10 changed entries in a large cache: only the changes travel.
    const big = store.attach(new PersistentCache<string, unknown>('big', { manager, contents: makeEntries(bigEntries) }));
    await big.save();
    const saves: number[] = [];
    for (let run = -1; run < runs; run++) {
      for (let i = 0; i < 10; i++) big.set(`key-${(run + 2) * 1000 + i}`, { changed: run });
      const start = performance.now();
      await big.save();
      if (run >= 0) saves.push(performance.now() - start);
    }
    // Full load of 100k entries: Redis (HSCAN) against the v8 file store.
    const rows = makeEntries(100_000);
    const inRedis = store.attach(new PersistentCache<string, unknown>('load', { manager, contents: rows }));
    await inRedis.save();
    const inFile = new PersistentCache<string, unknown>('load-file', { manager, contents: rows });
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
      if (inRedis.size !== 100_000 || inFile.size !== 100_000) throw new Error('lost entries');
      if (run >= 0) {
        redisLoads.push(r);
        fileLoads.push(f);
      }
    }
    return { saveChangedMs: median(saves), loadRedisMs: median(redisLoads), loadFileMs: median(fileLoads) };
  } finally {
    await manager.close();
    await store.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
