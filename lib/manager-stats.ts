import * as fs from 'node:fs';
import type { AnyCacheMap, CacheStats } from './cache';

/** One cache in `manager.stats()`: its counters plus the size of its file. */
export interface ManagedCacheStats extends CacheStats {
  /** Size of the saved file, when the cache has one and it exists. */
  readonly bytesOnDisk: number | undefined;
}

/** Everything `manager.stats()` reports. */
export interface ManagerStats {
  readonly manager: string;
  readonly cacheDirectory: string;
  readonly caches: ManagedCacheStats[];
  /** This process, through pidusage (CPU since the last sample; undefined where unsupported). */
  readonly process: { readonly pid: number; readonly cpuPercent: number | undefined; readonly memoryBytes: number };
  readonly memory: NodeJS.MemoryUsage;
}

/**
 * Per cache: its counters and the bytes of its file and journal; and this process's CPU and
 * memory. pidusage is loaded by the first call, not with the package.
 */
export async function managerStats(manager: string, cacheDirectory: string, registered: Iterable<AnyCacheMap>): Promise<ManagerStats> {
  const caches: ManagedCacheStats[] = [];
  for (const cache of registered) {
    const [main, ...beside] = cache.savedFiles;
    let bytesOnDisk: number | undefined;
    if (main !== undefined) {
      bytesOnDisk = await fs.promises.stat(main).then((s) => s.size, () => undefined);
      // Beside the file (its journal): their bytes are on disk too.
      for (const file of beside) if (bytesOnDisk !== undefined) bytesOnDisk += await fs.promises.stat(file).then((s) => s.size, () => 0);
    }
    caches.push({ ...cache.stats, bytesOnDisk });
  }
  return { manager, cacheDirectory, caches, process: await processUsage(), memory: process.memoryUsage() };
}

async function processUsage(): Promise<ManagerStats['process']> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pidusage = require('pidusage') as typeof import('pidusage');
  let cpuPercent: number | undefined;
  let memoryBytes = process.memoryUsage().rss;
  try {
    const usage = await pidusage(process.pid);
    cpuPercent = usage.cpu;
    memoryBytes = usage.memory;
  } catch {
    // unsupported platform: memory from Node itself, no CPU figure
  } finally {
    pidusage.clear(); // drops its history, and the timer that keeps it
  }
  return { pid: process.pid, cpuPercent, memoryBytes };
}
