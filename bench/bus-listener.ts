// One process on the invalidation bus, for the bench's latency figure: it holds caches `src` and
// `dep` (a dependent of `src`) and tells its parent, on the monotonic clock the processes of a
// machine share, when each invalidation another process sent has reached `dep`.
import { CacheManager, PersistentCache, connectBus } from '../lib';

async function main(): Promise<void> {
  const [url, dir] = process.argv.slice(2) as [string, string];
  const manager = new CacheManager('latency', { baseDirectory: dir });
  const src = new PersistentCache<string, number>('src', { manager, contents: new Map([['a', 1]]) });
  const dep = new PersistentCache<string, number>('dep', { manager, contents: new Map([['b', 2]]) });
  await manager.registerDependentCache('src', 'dep');
  await src.save();
  await dep.save();
  manager.on('invalidate', ({ cache }: { cache: string }) => {
    if (cache === 'dep') process.send?.({ reached: process.hrtime.bigint().toString() });
  });
  const bus = await connectBus(manager, url);
  process.on('message', (message) => {
    if (message !== 'stop') return;
    void (async () => {
      await bus.close();
      await manager.close();
      process.disconnect();
    })();
  });
  process.send?.('ready');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
