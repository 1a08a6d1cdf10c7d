// A slow function whose results survive restarts (percache for TypeScript).
// Run it twice: the second run answers at once, without calling the function.
//   npx ts-node examples/memoize.ts
import { getCacheManager, memoize } from '../lib';

// Stands in for an expensive step: a query, a model call, a heavy parse.
function slowFibonacci(n: number): bigint {
  const until = Date.now() + 500;
  while (Date.now() < until); // burn half a second, synchronously
  let [a, b] = [0n, 1n];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

async function main(): Promise<void> {
  const manager = getCacheManager('depcache-examples');
  const fib = memoize(slowFibonacci, { manager }); // still a sync function

  let started = performance.now();
  const value = fib(300);
  const first = performance.now() - started;
  console.log(`fib(300) = ${String(value).slice(0, 20)}… in ${first.toFixed(1)} ms`);
  console.log(first > 400 ? 'computed: run me again, it will be instant' : 'from an earlier run: no computation');

  started = performance.now();
  fib(300);
  console.log(`again in this process: ${(performance.now() - started).toFixed(3)} ms`);

  await manager.close(); // saves the results (exit would too)
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
