import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { CacheManager, PersistentCache } from '../lib';
import { median } from './stats';
import type { Row } from './workload';

/**
 * Longest gap between event-loop turns while `work` runs, and how long the work took. The young
 * generation the caller left (the edits that set the work up) is collected first, with a minor
 * GC only: its scavenge is not the work's (a full GC here would leave sweeping that is not the
 * work's either).
 *
 * With `quietHeap`, the heap is brought to rest first instead: a full GC (which ends any marking
 * cycle the setup started), then a pause long enough for its concurrent sweeping to finish. The
 * setup of the journal bench allocates hundreds of MB; the major GC cycle it starts makes every
 * scavenge during the next second 8-10 ms (they promote while marking runs) and ends in a
 * 20-odd ms atomic pause, whoever is running then. Both figures are reported.
 */
export async function probe(work: () => Promise<unknown>, { quietHeap = false } = {}): Promise<{ stallMs: number; totalMs: number }> {
  const gc = (globalThis as { gc?: (options?: { type: 'minor' }) => void }).gc;
  if (quietHeap && gc !== undefined) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 300));
  } else {
    gc?.({ type: 'minor' });
  }
  let running = true;
  let last = performance.now();
  let worst = 0;
  const tick = () => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const start = performance.now();
  await work();
  const totalMs = performance.now() - start;
  running = false;
  worst = Math.max(worst, performance.now() - last);
  return { stallMs: worst, totalMs };
}

export interface StallFigures {
  readonly entries: number;
  readonly depcacheStallMs: number;
  readonly depcacheSaveMs: number;
  readonly floorStallMs: number;
  readonly floorSaveMs: number;
}

/**
 * A save of `entries` while the event loop is watched, against one `v8.serialize` + write of the
 * same map (no fsync: the plainest save there is), medians of `runs`.
 */
export async function saveStall(entries: Map<string, Row>, runs: number, dir: string): Promise<StallFigures> {
  // Whole saves (journal off): with it, saving an unchanged cache again would write nothing.
  const manager = new CacheManager('stall', { baseDirectory: dir, fileStore: { journal: false } });
  const cache = new PersistentCache<string, Row>('big', { manager, contents: entries });
  const file = path.join(dir, 'floor-stall.v8');
  const ours: Array<{ stallMs: number; totalMs: number }> = [];
  const floor: Array<{ stallMs: number; totalMs: number }> = [];
  for (let run = -1; run < runs; run++) {
    const a = await probe(() => cache.save());
    const b = await probe(async () => fs.promises.writeFile(file, v8.serialize(entries)));
    if (run >= 0) {
      ours.push(a);
      floor.push(b);
    }
  }
  await manager.close();
  return {
    entries: entries.size,
    depcacheStallMs: median(ours.map((r) => r.stallMs)),
    depcacheSaveMs: median(ours.map((r) => r.totalMs)),
    floorStallMs: median(floor.map((r) => r.stallMs)),
    floorSaveMs: median(floor.map((r) => r.totalMs)),
  };
}
