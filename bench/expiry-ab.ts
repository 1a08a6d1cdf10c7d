// `get` of a NonPersistentCache against lru-cache configured the same way, in one process,
// alternating 28 measured runs of each, and the median of the runs' ratios (> 1: ours faster).
// A check beside the bench's expiry rows, which run each subject in a process of its own: here
// both share the machine's moment, so its slow states cancel (order and heap do not: the bench
// keeps its own design). `random` reads the keys in a shuffled order instead of the bench's
// insertion order (where each read finds the least recent entry). Usage:
//   node -r ts-node/register/transpile-only bench/expiry-ab.ts max|both [random]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LRUCache } from 'lru-cache';
import { CacheManager, NonPersistentCache } from '../lib';
import { median } from './stats';
import { type Row, makeEntries } from './workload';

const HOUR = 3_600_000;
const config = process.argv[2] === 'both' ? 'both' : 'max';
const entries = makeEntries(100_000);
const keys = [...entries.keys()];
const order = process.argv[3] === 'random' ? 'random' : 'insertion';
if (order === 'random') {
  let seed = 1;
  for (let i = keys.length - 1; i > 0; i--) {
    seed = (seed * 48271) % 2147483647; // a fixed shuffle: both subjects read the same order
    const j = seed % (i + 1);
    [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
  }
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-ab-'));
const manager = new CacheManager('ab', { baseDirectory: dir });
const lru = new LRUCache<string, Row>(config === 'both' ? { max: entries.size, ttl: HOUR } : { max: entries.size });
for (const [k, v] of entries) lru.set(k, v);
const ours = new NonPersistentCache<string, Row>('ab', { manager, contents: entries, maxEntries: entries.size, ...(config === 'both' ? { ttlMs: HOUR } : {}) });

// One loop per subject, so that each call site sees one receiver.
function theirs(): number {
  let hits = 0;
  for (let r = 0; r < 10; r++) for (let i = 0; i < keys.length; i++) if (lru.get(keys[i] as string) !== undefined) hits++;
  return hits;
}
function mine(): number {
  let hits = 0;
  for (let r = 0; r < 10; r++) for (let i = 0; i < keys.length; i++) if (ours.get(keys[i] as string) !== undefined) hits++;
  return hits;
}
const timed = (fn: () => number): number => {
  const start = process.hrtime.bigint();
  if (fn() !== 10 * keys.length) throw new Error('lost entries');
  return Number(process.hrtime.bigint() - start) / (10 * keys.length);
};

const ratios: number[] = [];
const a: number[] = [];
const b: number[] = [];
for (let run = -3; run < 28; run++) {
  const t = timed(theirs);
  const m = timed(mine);
  if (run < 0) continue; // warm-up
  a.push(t);
  b.push(m);
  ratios.push(t / m);
}
console.log(`get, ${config}, ${order} order: lru-cache ${median(a).toFixed(1)} ns, NonPersistentCache ${median(b).toFixed(1)} ns, ratio ${median(ratios).toFixed(3)}×`);
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
