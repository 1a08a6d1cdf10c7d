// A three-step pipeline (raw → cleaned → report) on dependent caches, kept in a stable
// directory: the first run builds every step and saves it; the next run reuses the saved steps
// (and says so). `--refresh` brings new raw data: rebuilding raw recomputes the steps that
// depend on it, in order, and only those.
//   npx ts-node examples/etl.ts             # run it twice: the second run builds nothing
//   npx ts-node examples/etl.ts --refresh   # new raw data: cleaned and report follow
// Caches live in the manager 'etl' of the default per-user directory
// (<os.tmpdir()>/depcache-<uid>/etl), or under $ETL_BASE_DIR when set.
import { AutoSyncCache, CacheManager, JsonCache, memoize } from '../lib';

interface Order {
  id: number;
  customer: string;
  amount: number;
  country: string;
}

/**
 * A step's progress: on a terminal, one line rewritten in place every tenth of the way; in a
 * log or a pipe, one line when the step is done (no carriage returns in a log file).
 */
function progress(step: string, total: number): (done: number) => void {
  const tty = process.stdout.isTTY === true;
  let shown = -1;
  return (done) => {
    const tenth = Math.floor((done / total) * 10);
    if (tenth === shown) return;
    shown = tenth;
    if (tty) process.stdout.write(`\r${step}: ${tenth * 10}%${tenth === 10 ? '\n' : ''}`);
    else if (tenth === 10) process.stdout.write(`${step}: ${total} rows processed\n`);
  };
}

async function main(): Promise<void> {
  const refresh = process.argv.includes('--refresh');
  const baseDirectory = process.env.ETL_BASE_DIR || undefined; // empty: unset
  const manager = new CacheManager('etl', baseDirectory === undefined ? {} : { baseDirectory });
  const built = new Set<string>();
  manager.on('build', ({ cache }) => built.add(cache));
  // Each batch of raw data differs from every other (amounts shift by the batch number).
  let batch = refresh ? (Date.now() % 100_000) + 2 : 1;

  // Step 1: raw orders, as if fetched from an API (a different batch after --refresh).
  const raw = await AutoSyncCache.open<number, Order>('raw', {
    manager,
    builder: () => {
      const rows = new Map<number, Order>();
      const n = 20_000;
      const tick = progress(`raw (batch ${batch})`, n);
      for (let i = 0; i < n; i++) {
        const country = ['FR', 'de', ' US', 'fr', 'DE '][i % 5] as string;
        rows.set(i, { id: i, customer: `c${i % 997}`, amount: ((i * 37) % 1000) - 20 + batch, country });
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

  for (const step of ['raw', 'cleaned', 'report']) {
    console.log(`${step}: ${built.has(step) ? 'built (nothing usable was saved)' : 'reused, saved by an earlier run'}`);
  }
  console.log('report:', JSON.stringify(Object.fromEntries(report)));

  if (refresh) {
    // New input: rebuild raw; the cascade rebuilds cleaned, then report, in that order.
    const before = JSON.stringify([...report]);
    batch += 1;
    built.clear();
    await manager.invalidateAndRebuildCache('raw');
    console.log(`rebuilt after new raw data: ${[...built].join(' → ')}`);
    console.log('report:', JSON.stringify(Object.fromEntries(report)));
    console.log(`classified ${classified} distinct amounts (memoized; reset when raw changed)`);
    if (JSON.stringify([...report]) === before) throw new Error('the report did not follow its inputs');
  }

  const dir = baseDirectory === undefined ? '--manager etl' : `--dir ${manager.cacheDirectory}`;
  console.log(`caches in ${manager.cacheDirectory}; look inside with the CLI (npx depcache, or npm run cli -- in this repository):`);
  console.log(`  npm run cli -- ${dir} graph            # raw → cleaned → report`);
  console.log(`  npm run cli -- ${dir} show report      # the saved report`);
  console.log(`  npm run cli -- ${dir} invalidate raw   # the next run rebuilds raw and what depends on it`);
  await manager.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
