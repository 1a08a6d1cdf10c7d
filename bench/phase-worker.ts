// Runs one bench phase alone in a fresh process and prints its figures as JSON: phases that
// measure pauses (GC included), or nanoseconds, must not inherit the heap of the phases before
// them (the memoized hit measured 1.3× alone and 1.95× after the 1M saves and loads).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { journalBench } from './journal-bench';
import { memoizeHit } from './memoize-hit';
import { redisBench } from './redis-bench';
import { savePaths } from './save-paths';
import { saveStall } from './stall';
import { makeEntries } from './workload';

async function main(): Promise<unknown> {
  const [phase, entriesArg, runsArg] = process.argv.slice(2) as [string, string, string];
  const entries = Number(entriesArg);
  const runs = Number(runsArg);
  if (phase === 'stall') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-stall-'));
    try {
      return await saveStall(makeEntries(entries), runs, dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  if (phase === 'journal') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-journal-'));
    try {
      return await journalBench(makeEntries(entries), runs, dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  // runs: 1 with peers (merge and follow rows), 0 without (the 10M row).
  if (phase === 'savePaths') return savePaths(entries, false, runs > 0);
  if (phase === 'redis') return (await redisBench(runs, entries)) ?? null;
  if (phase === 'memoHit') return memoizeHit(runs);
  throw new Error(`unknown phase ${phase}`);
}

main().then(
  (figures) => {
    process.stdout.write(JSON.stringify(figures));
    process.exit(0);
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
