import { LRUCache } from 'lru-cache';
import { CacheManager, NonPersistentCache } from '../lib';
import { makeEntries, Row } from './workload';
const entries = makeEntries(100_000);
const keys = [...entries.keys()];
const manager = new CacheManager('ab', { baseDirectory: '/tmp/jl/ab' });
const l = new LRUCache<string, Row>({ max: entries.size }); for (const [k, v] of entries) l.set(k, v);
const c = new NonPersistentCache<string, Row>('p', { manager, contents: entries, maxEntries: entries.size });
function runL() { let h = 0; for (let r = 0; r < 10; r++) for (let i = 0; i < keys.length; i++) if (l.get(keys[i] as string) !== undefined) h++; return h; }
function runC() { let h = 0; for (let r = 0; r < 10; r++) for (let i = 0; i < keys.length; i++) if (c.get(keys[i] as string) !== undefined) h++; return h; }
const ratios: number[] = []; const ls: number[] = []; const cs: number[] = [];
for (let run = 0; run < 31; run++) {
  let t = process.hrtime.bigint(); runL(); const a = Number(process.hrtime.bigint() - t) / (10 * keys.length);
  t = process.hrtime.bigint(); runC(); const b = Number(process.hrtime.bigint() - t) / (10 * keys.length);
  if (run >= 3) { ratios.push(a / b); ls.push(a); cs.push(b); }
}
const med = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1]!;
console.log(`lru ${med(ls).toFixed(1)} ours ${med(cs).toFixed(1)} ratio(lru/ours) ${med(ratios).toFixed(3)}`);
process.exit(0);
