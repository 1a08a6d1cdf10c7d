import { LRUCache } from 'lru-cache';
import { CacheManager, NonPersistentCache } from '../lib';
import { makeEntries, Row } from './workload';
const entries = makeEntries(100_000);
const keys = [...entries.keys()];
const manager = new CacheManager('ab', { baseDirectory: '/tmp/jl/ab' });
const which = process.argv[2];
let map: { get(k: string): Row | undefined };
if (which === 'lru') { const l = new LRUCache<string, Row>({ max: entries.size }); for (const [k, v] of entries) l.set(k, v); map = l; }
else map = new NonPersistentCache<string, Row>('p', { manager, contents: entries, maxEntries: entries.size });
const res: number[] = [];
for (let run = 0; run < 15; run++) {
  let hits = 0;
  const t = process.hrtime.bigint();
  for (let r = 0; r < 20; r++) for (let i = 0; i < keys.length; i++) if (map.get(keys[i] as string) !== undefined) hits++;
  const ns = Number(process.hrtime.bigint() - t) / (20 * keys.length);
  if (hits !== 20 * keys.length) throw new Error('miss');
  res.push(ns);
}
res.sort((a, b) => a - b);
console.log(which, res[7]!.toFixed(1), 'min', res[0]!.toFixed(1));
process.exit(0);
