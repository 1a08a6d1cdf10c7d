// A three-step pipeline (raw → cleaned → report) on dependent caches. Each step is built once and
// saved; rerunning the script reuses the saved steps. Rebuilding `raw` (new input) recomputes
// the steps that depend on it, and only those.
//   npx ts-node examples/etl.ts
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AutoSyncCache, CacheManager, JsonCache, memoize } from '../lib';

interface Order {
  id: number;
  customer: string;
  amount: number;
  country: string;
}

/** Prints a step's progress every tenth of the way: long steps should not look hung. */
function progress(step: string, total: number): (done: number) => void {
  let shown = -1;
  return (done) => {
    const tenth = Math.floor((done / total) * 10);
    if (tenth !== shown) {
      shown = tenth;
      process.stdout.write(`\r${step}: ${tenth * 10}%${tenth === 10 ? '\n' : ''}`);
    }
  };
}

async function main(): Promise<void> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-etl-'));
  const manager = new CacheManager('etl', { baseDirectory: base });
  let batch = 1;

  // Step 1: raw orders, as if fetched from an API (a different batch after invalidation).
  const raw = await AutoSyncCache.open<number, Order>('raw', {
    manager,
    builder: () => {
      const rows = new Map<number, Order>();
      const n = 20_000;
      const tick = progress(`raw (batch ${batch})`, n);
      for (let i = 0; i < n; i++) {
        const country = ['FR', 'de', ' US', 'fr', 'DE '][(i * batch) % 5] as string;
        rows.set(i, { id: i, customer: `c${i % 997}`, amount: ((i * 37 * batch) % 1000) - 20, country });
        tick(i + 1);
      }
      return rows;
    },
  });

  // A memoized, "expensive" classification: its results survive runs, dropped when raw changes.
  let classified = 0;
  const band = memoize(
    (amount: number) => {
      classified++;
      return amount >= 500 ? 'large' : amount >= 100 ? 'medium' : 'small';
    },
    { manager, dependsOn: ['raw'] },
  );

  // Step 2: cleaned orders (normalized country, no refunds), built from raw.
  const cleaned = await AutoSyncCache.open<number, Order & { band: string }>('cleaned', {
    manager,
    builder: () => {
      const out = new Map<number, Order & { band: string }>();
      const tick = progress('cleaned', raw.size);
      let done = 0;
      for (const [id, order] of raw) {
        tick(++done);
        if (order.amount <= 0) continue;
        out.set(id, { ...order, country: order.country.trim().toUpperCase(), band: band(order.amount) });
      }
      return out;
    },
  });

  // Step 3: a human-readable report (JSON file), built from cleaned.
  const report = await JsonCache.open<string, { orders: number; revenue: number }>('report', {
    manager,
    builder: () => {
      const totals = new Map<string, { orders: number; revenue: number }>();
      for (const order of cleaned.values()) {
        const t = totals.get(order.country) ?? { orders: 0, revenue: 0 };
        t.orders++;
        t.revenue += order.amount;
        totals.set(order.country, t);
      }
      return totals;
    },
  });

  await manager.registerDependentCache('raw', 'cleaned');
  await manager.registerDependentCache('cleaned', 'report');

  console.log('report:', Object.fromEntries(report));
  const before = JSON.stringify([...report]);

  // New input: rebuild raw; the cascade rebuilds cleaned, then report, in that order.
  batch = 2;
  await manager.invalidateAndRebuildCache('raw');
  console.log('report after new raw data:', Object.fromEntries(report));
  console.log(`classified ${classified} distinct amounts (memoized; reset when raw changed)`);
  console.log(`inspect it: npx ts-node lib/cli/main.ts --dir ${manager.cacheDirectory} graph`);

  await manager.close();
  fs.rmSync(base, { recursive: true, force: true });
  if (JSON.stringify([...report]) === before) throw new Error('the report did not follow its inputs');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
