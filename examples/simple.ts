// A Map that is still there after a restart. Run it twice: the second run finds the first's data.
//   npx ts-node examples/simple.ts
import { getCacheManager } from '../lib';

async function main(): Promise<void> {
  // One manager per name; its files live in <os.tmpdir()>/depcache-examples.
  const manager = getCacheManager('depcache-examples');
  const visits = await manager.registerCache<string, number>('visits');

  const previous = visits.get('runs') ?? 0;
  console.log(previous === 0 ? 'first run: nothing saved yet' : `found ${previous} earlier run(s)`);
  visits.set('runs', previous + 1);
  visits.set('last', Date.now());

  await visits.save(); // or let autosync / exit do it
  console.log(`saved to ${manager.cacheDirectory}`);
  await manager.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
