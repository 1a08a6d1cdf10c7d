// What `require('depcache')` costs a program that never opens a cache: the time of the require
// in a fresh process (nothing cached, nothing shared with the other subject), against keyv's in
// the same run, and what the require leaves behind (signal listeners, optional packages loaded).
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { median } from './stats';
import { builtLibrary } from './worker-process';

export interface ImportCostFigures {
  /** Median ms of `require` of the library's entry point, one fresh process per run. */
  readonly depcacheMs: number;
  readonly keyvMs: number;
  readonly runs: number;
  /** Signal and exit listeners right after requiring depcache (all 0 when import changes nothing). */
  readonly listeners: Readonly<Record<string, number>>;
  /** Packages from node_modules that the require loaded. */
  readonly packages: readonly string[];
}

// Times the require alone (not Node's start-up, the same for both) and reports what it left.
const CHILD = `
const start = process.hrtime.bigint();
require(process.argv[1]);
const ms = Number(process.hrtime.bigint() - start) / 1e6;
const listeners = {};
for (const e of ['SIGINT', 'SIGTERM', 'SIGHUP', 'exit', 'beforeExit']) listeners[e] = process.listenerCount(e);
const packages = [...new Set(Object.keys(require.cache)
  .map((f) => /node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/.exec(f))
  .filter(Boolean).map((m) => m[1].replace(/\\\\/g, '/')))];
process.stdout.write(JSON.stringify({ ms, listeners, packages }));
`;

interface ChildReport {
  ms: number;
  listeners: Record<string, number>;
  packages: string[];
}

function requireOnce(target: string): ChildReport {
  const out = execFileSync(process.execPath, ['-e', CHILD, target], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out) as ChildReport;
}

/** `runs` fresh processes per subject, interleaved (after one unmeasured round that warms the disk cache). */
export function importCost(runs: number): ImportCostFigures {
  const ours = path.join(builtLibrary(), 'lib', 'index.js');
  const keyv = require.resolve('keyv');
  const depcacheMs: number[] = [];
  const keyvMs: number[] = [];
  let last: ChildReport | undefined;
  for (let run = -1; run < runs; run++) {
    const a = requireOnce(ours);
    const b = requireOnce(keyv);
    if (run < 0) continue;
    depcacheMs.push(a.ms);
    keyvMs.push(b.ms);
    last = a;
  }
  const report = last as ChildReport;
  return { depcacheMs: median(depcacheMs), keyvMs: median(keyvMs), runs, listeners: report.listeners, packages: report.packages };
}
