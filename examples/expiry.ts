// Cached API responses that expire, in a cache bounded to a few entries. Run it twice within a
// minute: the second run finds the responses the first one saved; after that they are gone.
//   npx ts-node examples/expiry.ts
import { PersistentCache, getCacheManager } from '../lib';

// Stands for a slow HTTP call.
async function fetchRate(currency: string): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 50));
  return currency.length * 1.1;
}

async function main(): Promise<void> {
  const manager = getCacheManager('depcache-examples');
  manager.on('evict', ({ cache, key }) => console.log(`${cache}: evicted ${String(key)} (least recently used)`));
  // An hour by default, and at most 3 entries: the fourth currency pushes the oldest out.
  const rates = await PersistentCache.open<string, number>('rates', { manager, ttlMs: 3_600_000, maxEntries: 3 });

  const missing: string[] = [];
  for (const currency of ['EUR', 'USD', 'JPY', 'GBP']) {
    const cached = rates.get(currency); // a get makes the entry recent
    if (cached === undefined) missing.push(currency);
    else console.log(`${currency}: ${cached} (from an earlier run, until ${new Date(rates.expiresAt(currency) ?? 0).toISOString()})`);
  }
  for (const currency of missing) {
    // The GBP rate changes often: it lives a minute, whatever the cache's default.
    rates.set(currency, await fetchRate(currency), currency === 'GBP' ? { ttlMs: 60_000 } : undefined);
    console.log(`${currency}: fetched`);
  }
  await manager.close(); // saves, with each entry's expiry time
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
