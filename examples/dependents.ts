// CacheMan's root/edge example: a value computed from another cache is recomputed once the root
// is invalidated, because invalidation cascades to dependents.
//   npx ts-node examples/dependents.ts
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CacheManager } from '../lib';

async function main(): Promise<void> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-dependents-'));
  const manager = new CacheManager('dependents', { baseDirectory: base });
  const edge = await manager.retrieveCache<string, number>('edge_cache');
  const root = await manager.registerCache<string, number>('root_cache');
  await manager.registerDependentCache('root_cache', 'edge_cache');

  // Computes and caches 'processed' from root's 'raw' value.
  const processedValue = (): number => {
    let processed = edge.get('processed');
    if (processed === undefined) {
      processed = (root.get('raw') ?? 0) * 5;
      edge.set('processed', processed);
    }
    return processed;
  };

  // The classic problem with caching derived values:
  console.log('processed without raw:', processedValue()); // 0
  root.set('raw', 1);
  console.log('processed after raw = 1:', processedValue()); // still 0: cached in edge

  // Invalidation tells downstream caches they are stale.
  await root.invalidate(); // reloads root and, by cascade, edge: unsaved edits are dropped
  console.log('edge after root.invalidate():', Object.fromEntries(edge)); // {}
  root.set('raw', 1);
  const value = processedValue();
  console.log('processed after invalidation:', value); // 5
  console.log('edge now holds:', Object.fromEntries(edge));

  await manager.close();
  fs.rmSync(base, { recursive: true, force: true });
  if (value !== 5) throw new Error(`expected 5, got ${value}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
