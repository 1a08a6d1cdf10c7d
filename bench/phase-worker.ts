// Runs one bench phase alone in a fresh process and prints its figures as JSON: phases that
// measure pauses (GC included) must not inherit the garbage of the phases before them.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { journalBench } from './journal-bench';
import { redisBench } from './redis-bench';
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
  if (phase === 'redis') return (await redisBench(runs, entries)) ?? null;
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
