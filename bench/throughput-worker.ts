// Measures get and set of one subject over 100k entries, alone in its process, and prints JSON.
// Run by throughput.ts: one process per subject and round, so subjects never share a heap or
// JIT feedback (in one process the order of subjects alone moved results by 30%).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LRUCache } from 'lru-cache';
import { AutoSyncCache, CacheManager, NonPersistentCache, PersistentCache } from '../lib';
import { median } from './stats';
import { type Row, makeEntries } from './workload';

/** Heap bytes per entry of a Map or a PersistentCache holding the same rows, in a fresh heap. */
function heapPerEntry(subject: string, n: number, manager: CacheManager): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const rows = makeEntries(n);
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const held = subject === 'Map' ? new Map(rows) : new PersistentCache('h', { manager, contents: rows });
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  if (held.size !== n) throw new Error('lost entries');
  return (after - before) / n;
}

const HOUR = 3_600_000;
// lru-cache warns that a ttl without max may grow unbounded: true, and beside the point here.
process.removeAllListeners('warning');

async function main(): Promise<void> {
  const [subject, countArg] = process.argv.slice(2) as [string, string];
  if (subject.startsWith('heap:')) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-heap-'));
    const manager = new CacheManager('heap', { baseDirectory: dir });
    const bytes = heapPerEntry(subject.slice(5), Number(countArg), manager);
    fs.rmSync(dir, { recursive: true, force: true });
    process.stdout.write(JSON.stringify({ bytes }));
    process.exit(0);
  }
  const entries = makeEntries(Number(countArg));
  const keys = [...entries.keys()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-tp-'));
  const manager = new CacheManager('throughput', { baseDirectory: dir });
  let map: Map<string, Row>;
  if (subject === 'Map') map = new Map(entries);
  else if (subject === 'PersistentCache') map = new PersistentCache<string, Row>('p', { manager, contents: entries });
  // Expiry and bounds, side by side with lru-cache configured the same way: an hour's lifetime
  // (nothing expires during the run, every read checks), and a bound the size of the workload.
  else if (subject === 'PersistentCache, ttlMs') map = new PersistentCache<string, Row>('p', { manager, contents: entries, ttlMs: HOUR });
  else if (subject === 'PersistentCache, maxEntries') map = new PersistentCache<string, Row>('p', { manager, contents: entries, maxEntries: entries.size });
  else if (subject === 'PersistentCache, both') map = new PersistentCache<string, Row>('p', { manager, contents: entries, ttlMs: HOUR, maxEntries: entries.size });
  else if (subject === 'NonPersistentCache') map = new NonPersistentCache<string, Row>('p', { manager, contents: entries });
  else if (subject === 'NonPersistentCache, maxEntries') map = new NonPersistentCache<string, Row>('p', { manager, contents: entries, maxEntries: entries.size });
  else if (subject === 'NonPersistentCache, ttlMs') map = new NonPersistentCache<string, Row>('p', { manager, contents: entries, ttlMs: HOUR });
  else if (subject === 'NonPersistentCache, both') map = new NonPersistentCache<string, Row>('p', { manager, contents: entries, ttlMs: HOUR, maxEntries: entries.size });
  else if (subject.startsWith('lru-cache')) {
    const options = subject === 'lru-cache, ttl' ? { ttl: HOUR, ttlAutopurge: false } : subject === 'lru-cache, max' ? { max: entries.size } : { max: entries.size, ttl: HOUR };
    const lru = new LRUCache<string, Row>(options as LRUCache.Options<string, Row, unknown>);
    for (const [k, v] of entries) lru.set(k, v);
    map = lru as unknown as Map<string, Row>;
  }
  // Default windows: a set-heavy loop crosses 10,000 edits in 60 s, so background saves are
  // requested (and coalesced) as in real use.
  // Thresholds out of reach: the edit-counting path alone, no save in flight.
  else if (subject === 'AutoSyncCache, no save')
    map = new AutoSyncCache<string, Row>('a', { manager, contents: entries, timeChecks: [{ seconds: 60, count: 1e12 }] });
  // Default windows: a set-heavy loop crosses 10,000 edits in 60 s, so background saves run
  // while the loop goes on and every set pays the snapshot's copy-on-write check.
  else map = new AutoSyncCache<string, Row>('a', { manager, contents: entries });
  const rounds = Math.max(1, Math.round(2_000_000 / keys.length));
  const value: Row = { id: -1, name: 'x', score: 0, tags: [] };
  const gets: number[] = [];
  const sets: number[] = [];
  const runs = Number(process.argv[4] ?? 9);
  for (let run = -2; run < runs; run++) {
    let t = performance.now();
    let hits = 0;
    for (let r = 0; r < rounds; r++) for (let i = 0; i < keys.length; i++) if (map.get(keys[i] as string) !== undefined) hits++;
    const getMs = performance.now() - t;
    t = performance.now();
    for (let r = 0; r < rounds; r++) for (let i = 0; i < keys.length; i++) map.set(keys[i] as string, value);
    const setMs = performance.now() - t;
    if (hits !== rounds * keys.length) throw new Error('lost entries');
    if (run >= 0) {
      gets.push((getMs * 1e6) / (rounds * keys.length));
      sets.push((setMs * 1e6) / (rounds * keys.length));
    }
    // Let background saves run between runs, as an event loop would.
    await new Promise((r) => setImmediate(r));
  }
  await manager.close();
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ getNs: median(gets), setNs: median(sets) }));
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
