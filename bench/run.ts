// npm run bench [-- --quick] [-- --json FILE] [-- --readme] [-- --only importCost,getSet,saveAndLoad,...]
// Every figure is measured in this run and every comparison is a ratio against a baseline
// measured in this same run. Nothing here asserts: targets are shown, never enforced.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Contender, depcache, flatCache, keyvFile, nodePersist, rawFloor } from './save-load';
import type { StallFigures } from './stall';
import type { SavePathFigures } from './save-paths';
import { formatCount, formatMs, gc, measure, median } from './stats';
import type { MemoizeHitFigures } from './memoize-hit';
import { importCost } from './import-cost';
import { poolBench } from './pool-bench';
import type { JournalFigures } from './journal-bench';
import type { RedisFigures } from './redis-bench';
import { EXPIRY_PAIRS, type Throughput, heapPerEntry, throughput } from './throughput';
import { runWorker } from './worker-process';
import { type Row, makeEntries } from './workload';

interface Figure {
  measure: string;
  entries: number;
  subject: string;
  value: number;
  unit: 'ms' | 'ns/op' | 'B/entry' | 'B';
  baseline: string;
  ratio: number | null;
  target: string;
  met: boolean | null;
  note?: string;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const jsonIndex = args.indexOf('--json');
const jsonOut = jsonIndex >= 0 ? args[jsonIndex + 1] : undefined;
const writeReadme = args.includes('--readme');
const onlyIndex = args.indexOf('--only');
// Phases to run (all by default): a partial run is for checking one figure, never for the README.
const only = onlyIndex >= 0 ? new Set((args[onlyIndex + 1] ?? '').split(',')) : undefined;
const phase = (name: string): boolean => only === undefined || only.has(name);

const RUNS = quick ? 3 : 5;
const SIZES = quick ? [10_000, 100_000] : [10_000, 100_000, 1_000_000];
// node-persist writes one file per key: a million files is past any reasonable run.
const PEER_LIMIT: Record<string, number> = quick
  ? { 'flat-cache': 10_000, 'node-persist': 0, 'keyv + keyv-file': 10_000 }
  : { 'flat-cache': 1_000_000, 'node-persist': 100_000, 'keyv + keyv-file': 1_000_000 };
const figures: Figure[] = [];
const failures: string[] = [];

function add(f: Figure): void {
  figures.push(f);
  const ratio = f.ratio === null ? '' : ` (${f.ratio.toFixed(2)}× ${f.baseline})`;
  const note = f.note === undefined ? '' : ` [${f.note}]`;
  console.error(`  ${f.measure} ${formatCount(f.entries)} ${f.subject}: ${show(f)}${ratio}${note}`);
}

function show(f: Figure): string {
  if (f.unit === 'ms') return formatMs(f.value);
  return `${f.value.toFixed(f.unit === 'ns/op' ? 1 : 0)} ${f.unit}`;
}

function within(ratio: number, max: number): boolean {
  return ratio <= max;
}

async function saveAndLoad(dir: string): Promise<void> {
  for (const n of SIZES) {
    const entries = makeEntries(n);
    const contenders: Contender[] = [depcache(), rawFloor(), flatCache(), nodePersist(), keyvFile()];
    const results = new Map<string, { save: number; load: number; bytes: number }>();
    for (const c of contenders) {
      const limit = PEER_LIMIT[c.name];
      if (limit !== undefined && n > limit) continue;
      const cdir = fs.mkdtempSync(path.join(dir, 'c-'));
      try {
        gc();
        await c.setup(cdir, entries);
        const save = await measure(RUNS, () => c.save(), { before: gc });
        let loaded = 0;
        const load = await measure(RUNS, async () => (loaded = await c.load()), { before: gc });
        if (loaded !== n) throw new Error(`loaded ${loaded} of ${n} entries`);
        results.set(c.name, { save, load, bytes: c.bytes() });
        await c.close();
        console.error(`  measured ${c.name} at ${formatCount(n)}`);
      } catch (err) {
        // A peer that fails is reported as such; depcache or the floor failing ends the run.
        if (c.name === 'depcache' || c.name === 'raw floor') throw err;
        failures.push(`${c.name} at ${formatCount(n)}: ${(err as Error).message}`);
        console.error(`  ${c.name} failed at ${formatCount(n)}: ${(err as Error).message}`);
      } finally {
        fs.rmSync(cdir, { recursive: true, force: true });
      }
    }
    const ours = results.get('depcache') as { save: number; load: number; bytes: number };
    const floor = results.get('raw floor') as { save: number; load: number; bytes: number };
    const floorTargets = n >= 100_000;
    for (const op of ['save', 'load'] as const) {
      const ratio = ours[op] / floor[op];
      add({
        measure: op,
        entries: n,
        subject: 'depcache',
        value: ours[op],
        unit: 'ms',
        baseline: 'raw floor',
        ratio,
        target: floorTargets ? '≤ 1.15×' : '',
        met: floorTargets ? within(ratio, 1.15) : null,
      });
      add({ measure: op, entries: n, subject: 'raw floor', value: floor[op], unit: 'ms', baseline: '', ratio: null, target: '', met: null });
      for (const [name, r] of results) {
        if (name === 'depcache' || name === 'raw floor') continue;
        const peerRatio = r[op] / ours[op];
        add({
          measure: op,
          entries: n,
          subject: name,
          value: r[op],
          unit: 'ms',
          baseline: 'depcache',
          ratio: peerRatio,
          target: n === 100_000 ? '> 1× (depcache ahead)' : '',
          met: n === 100_000 ? peerRatio > 1 : null,
        });
      }
    }
    add({
      measure: 'disk',
      entries: n,
      subject: 'depcache',
      value: ours.bytes / n,
      unit: 'B/entry',
      baseline: 'raw floor',
      ratio: ours.bytes / floor.bytes,
      target: '',
      met: null,
    });
    for (const [name, r] of results) {
      if (name === 'depcache' || name === 'raw floor') continue;
      add({
        measure: 'disk',
        entries: n,
        subject: name,
        value: r.bytes / n,
        unit: 'B/entry',
        baseline: 'depcache',
        ratio: r.bytes / ours.bytes,
        target: n === 100_000 ? '> 1× (depcache smaller)' : '',
        met: n === 100_000 ? r.bytes > ours.bytes : null,
      });
    }
  }
}

function heap(): void {
  const n = 100_000;
  const mapBytes = heapPerEntry('Map', n);
  const cacheBytes = heapPerEntry('PersistentCache', n);
  add({ measure: 'heap (map + rows)', entries: n, subject: 'Map', value: mapBytes, unit: 'B/entry', baseline: '', ratio: null, target: '', met: null });
  add({
    measure: 'heap (map + rows)',
    entries: n,
    subject: 'PersistentCache',
    value: cacheBytes,
    unit: 'B/entry',
    baseline: 'Map',
    ratio: cacheBytes / mapBytes,
    target: '',
    met: null,
  });
}

async function getSet(): Promise<void> {
  const n = 100_000;
  // Process-to-process spread is ±15% (heap layout); the median of 9 processes steadies it.
  const results = throughput(n, quick ? 1 : 9, quick ? 3 : 9);
  const map = results.find((r) => r.subject === 'Map') as { getNs: number; setNs: number };
  for (const r of results) {
    for (const op of ['get', 'set'] as const) {
      const ns = op === 'get' ? r.getNs : r.setNs;
      const base = op === 'get' ? map.getNs : map.setNs;
      const isMap = r.subject === 'Map';
      // Throughput ratio = Map's time / ours: 1 means as fast as Map.
      const ratio = base / ns;
      add({
        measure: op,
        entries: n,
        subject: r.subject,
        value: ns,
        unit: 'ns/op',
        baseline: isMap ? '' : 'Map throughput',
        ratio: isMap ? null : ratio,
        // A save in flight makes every set pay the snapshot's copy-on-write check: shown, no target.
        target: isMap || (op === 'set' && r.subject === 'AutoSyncCache') ? '' : op === 'get' ? '≥ 0.9×' : '≥ 0.7×',
        met:
          isMap || (op === 'set' && r.subject === 'AutoSyncCache') ? null : ratio >= (op === 'get' ? 0.9 : 0.7),
      });
    }
  }
}

/**
 * get and set of caches with ttlMs, maxEntries or both, against lru-cache with ttl, max or both,
 * over the getSet workload (100k entries, every key read then set again; lifetimes of an hour,
 * so every read checks one and nothing expires; bounds the size of the workload). Interleaved,
 * one process per subject and round.
 */
async function expiry(): Promise<void> {
  const n = 100_000;
  const subjects = EXPIRY_PAIRS.flatMap(([, lru, ours]) => [lru, ...ours]);
  const results = new Map(throughput(n, quick ? 1 : 7, quick ? 3 : 9, subjects).map((r) => [r.subject, r]));
  // Each subject's fastest round: a process here is at times about 2× slower throughout, for
  // every subject alike (`--only expiry` prints the rounds), and such a state can last one
  // process or several, so neither medians nor ratios of neighbouring rounds cancel it. Noise
  // only ever adds time: the fastest round is the machine's own speed.
  const fastest = (r: Throughput, op: 'get' | 'set') => Math.min(...r.rounds.map((x) => (op === 'get' ? x.getNs : x.setNs)));
  for (const [config, lru, ours] of EXPIRY_PAIRS) {
    const base = results.get(lru) as Throughput;
    for (const op of ['get', 'set'] as const) {
      const theirs = fastest(base, op);
      add({ measure: `${op}, ${config}`, entries: n, subject: lru, value: theirs, unit: 'ns/op', baseline: '', ratio: null, target: '', met: null, note: roundsNote(base, op) });
      for (const subject of ours) {
        const r = results.get(subject) as Throughput;
        const mine = fastest(r, op);
        const ratio = theirs / mine;
        add({ measure: `${op}, ${config}`, entries: n, subject, value: mine, unit: 'ns/op', baseline: `${lru} throughput, fastest rounds`, ratio, target: '≥ 1×', met: ratio >= 1, note: roundsNote(r, op) });
      }
    }
  }
}

function roundsNote(r: Throughput, op: 'get' | 'set'): string {
  return `rounds: ${r.rounds.map((x) => (op === 'get' ? x.getNs : x.setNs).toFixed(1)).join(', ')} ns`;
}

/** Runs a phase in a fresh process (see phase-worker.ts) and parses its JSON figures. */
function inFreshProcess<T>(phase: string, entries: number, runs: number): T {
  const out = runWorker('phase-worker', [phase, String(entries), String(runs)]);
  return JSON.parse(out) as T;
}

async function stall(): Promise<void> {
  const n = quick ? 100_000 : 1_000_000;
  const f = inFreshProcess<StallFigures>('stall', n, quick ? 3 : 5);
  add({
    measure: 'longest stall during save',
    entries: n,
    subject: 'depcache',
    value: f.depcacheStallMs,
    unit: 'ms',
    baseline: 'serialize+write',
    ratio: f.depcacheStallMs / f.floorStallMs,
    target: n >= 1_000_000 ? '≤ 20 ms' : '',
    met: n >= 1_000_000 ? f.depcacheStallMs <= 20 : null,
  });
  add({
    measure: 'longest stall during save',
    entries: n,
    subject: 'serialize+write',
    value: f.floorStallMs,
    unit: 'ms',
    baseline: '',
    ratio: null,
    target: '',
    met: null,
  });
  add({
    measure: 'save time, loop watched',
    entries: n,
    subject: 'depcache',
    value: f.depcacheSaveMs,
    unit: 'ms',
    baseline: 'serialize+write',
    ratio: f.depcacheSaveMs / f.floorSaveMs,
    target: n >= 1_000_000 ? '≤ 1.2×' : '',
    met: n >= 1_000_000 ? f.depcacheSaveMs / f.floorSaveMs <= 1.2 : null,
  });
}

/**
 * The longest stall on each path a save takes in the default configuration (journal on), one
 * fresh process per size; 10M in the full run only (without the rows that need a second copy).
 */
function savePathStalls(): void {
  const sizes = quick ? [100_000] : [1_000_000, 10_000_000];
  for (const n of sizes) {
    const flags = n > 2_000_000 ? ['--expose-gc', '--max-old-space-size=12000'] : ['--expose-gc'];
    const f = JSON.parse(runWorker('phase-worker', ['savePaths', String(n), n > 2_000_000 ? '0' : '1'], flags)) as SavePathFigures;
    const big = n >= 1_000_000;
    const row = (measure: string, s: { stallMs: number | null; totalMs: number }, note: string) => {
      // Not measured in this run (NaN travels through JSON as null): no row, never a 0 that "meets" a target.
      if (s.stallMs === null || Number.isNaN(s.stallMs)) return;
      add({ measure, entries: n, subject: 'depcache', value: s.stallMs, unit: 'ms', baseline: '', ratio: null, target: big ? '≤ 20 ms' : '', met: big ? s.stallMs <= 20 : null, note: `${note}; the save took ${formatMs(s.totalMs)}` });
    };
    const files = f.firstSaveFiles;
    row('longest stall, first save of a new cache', f.firstSave, `AutoSyncCache, journal on; wrote a ${(files.baseBytes / 2 ** 20).toFixed(1)} MB base, ${files.journalBytes} B of journal${files.compacted ? ', then a compaction' : ''}`);
    row('longest stall, save after clear() and a refill', f.clearRefillSave, 'a whole file');
    row('longest stall, save of 20% changed keys', f.changedSave, 'memory in step: the whole file, not an append compacted at once');
    row('longest stall, journal append of 4% changed keys', f.appendSave, 'one record, encoded in slices');
    row('longest stall, compaction (another process appended)', f.compaction, 'from the files, on a worker thread');
    row('longest stall, merge append of every entry', f.mergeAppend, 'contents built after finding nothing saved, another process saved meanwhile');
    row('longest stall, follow merge of 20% changed keys', f.followMerge, 'followJournal: another process rewrote the file');
    row('longest stall, first save, journal off', f.journalOffFirstSave, 'fileStore: { journal: false }');
    if (f.smallSaveDuringCompactionMs !== null && !Number.isNaN(f.smallSaveDuringCompactionMs)) add({ measure: 'small save during a compaction', entries: n, subject: 'depcache', value: f.smallSaveDuringCompactionMs, unit: 'ms', baseline: 'small save, idle', ratio: f.smallSaveDuringCompactionMs / f.smallSaveIdleMs, target: big ? '≤ 5 ms' : '', met: big ? f.smallSaveDuringCompactionMs <= 5 : null, note: `10 edits; the same save idle took ${formatMs(f.smallSaveIdleMs)}` });
  }
}

/** `require('depcache')` against `require('keyv')`, each in fresh processes, in this run. */
function importTime(): void {
  const f = importCost(quick ? 5 : 15);
  const listeners = Object.entries(f.listeners).map(([e, n]) => `${e} ${n}`).join(', ');
  add({ measure: 'require, fresh process', entries: 0, subject: 'keyv', value: f.keyvMs, unit: 'ms', baseline: '', ratio: null, target: '', met: null });
  add({
    measure: 'require, fresh process',
    entries: 0,
    subject: 'depcache',
    value: f.depcacheMs,
    unit: 'ms',
    baseline: 'keyv',
    ratio: f.depcacheMs / f.keyvMs,
    target: '≤ 5×',
    met: f.depcacheMs / f.keyvMs <= 5,
    note: `median of ${f.runs} processes each; listeners after the require: ${listeners}; packages loaded: ${f.packages.join(', ') || 'none'}`,
  });
}

function memoHit(): void {
  const f = inFreshProcess<MemoizeHitFigures>('memoHit', 100, quick ? 3 : 7);
  add({ measure: 'call, small args', entries: 100, subject: 'plain function', value: f.plainNs, unit: 'ns/op', baseline: '', ratio: null, target: '', met: null });
  add({ measure: 'memoized hit', entries: 100, subject: 'memoizee (memory only)', value: f.memoizeeNs, unit: 'ns/op', baseline: '', ratio: null, target: '', met: null });
  add({
    measure: 'memoized hit',
    entries: 100,
    subject: 'depcache memoize (persistent)',
    value: f.depcacheNs,
    unit: 'ns/op',
    baseline: 'memoizee',
    ratio: f.depcacheNs / f.memoizeeNs,
    target: '≤ 3×',
    met: f.depcacheNs / f.memoizeeNs <= 3,
  });
  add({ measure: 'memoized hit, object argument', entries: 100, subject: 'Map by JSON.stringify', value: f.jsonMapObjectNs, unit: 'ns/op', baseline: '', ratio: null, target: '', met: null });
  add({
    measure: 'memoized hit, object argument',
    entries: 100,
    subject: 'depcache memoize (persistent)',
    value: f.depcacheObjectNs,
    unit: 'ns/op',
    baseline: 'Map by JSON.stringify',
    ratio: f.depcacheObjectNs / f.jsonMapObjectNs,
    target: '≤ 1.5×',
    met: f.depcacheObjectNs / f.jsonMapObjectNs <= 1.5,
  });
}

async function pools(): Promise<void> {
  const f = poolBench(quick ? 1 : 3, quick ? 1 : 3);
  const scenarios = [
    ['acquire+release, uncontended', f.uncontendedNs, 1],
    ['acquire+release, 20k waiters on 500', f.contendedNs, 500],
  ] as const;
  for (const [measure, ns, size] of scenarios) {
    const floor = ns['minimal stack'] as number;
    const ours = ns['depcache Pool'] as number;
    add({ measure, entries: size, subject: 'minimal stack', value: floor, unit: 'ns/op', baseline: '', ratio: null, target: '', met: null });
    add({ measure, entries: size, subject: 'depcache Pool', value: ours, unit: 'ns/op', baseline: 'minimal stack', ratio: ours / floor, target: '≤ 2×', met: ours / floor <= 2 });
    for (const peer of ['generic-pool', 'tarn']) {
      const theirs = ns[peer] as number;
      const uncontended = size === 1;
      add({
        measure,
        entries: size,
        subject: peer,
        value: theirs,
        unit: 'ns/op',
        baseline: 'depcache Pool',
        ratio: theirs / ours,
        target: uncontended && peer === 'generic-pool' ? '≥ 3× (depcache faster)' : '',
        met: uncontended && peer === 'generic-pool' ? theirs / ours >= 3 : null,
      });
    }
  }
}

async function journal(): Promise<void> {
  const n = quick ? 100_000 : 1_000_000;
  const f = inFreshProcess<JournalFigures>('journal', n, quick ? 3 : 5);
  const big = n >= 1_000_000;
  add({ measure: 'save, whole file', entries: n, subject: 'depcache', value: f.fullSaveMs, unit: 'ms', baseline: '', ratio: null, target: '', met: null, note: `${f.fullSaveBytes} bytes` });
  const bytesRatio = f.tenEditSaveBytes / f.fullSaveBytes;
  add({ measure: 'save after 10 edits (journal)', entries: n, subject: 'depcache', value: f.tenEditSaveMs, unit: 'ms', baseline: 'save, whole file', ratio: f.tenEditSaveMs / f.fullSaveMs, target: big ? '≤ 0.02× (time)' : '', met: big ? f.tenEditSaveMs / f.fullSaveMs <= 0.02 : null });
  add({ measure: 'bytes written after 10 edits (journal)', entries: n, subject: 'depcache', value: f.tenEditSaveBytes, unit: 'B', baseline: 'save, whole file', ratio: bytesRatio, target: big ? '≤ 0.001×' : '', met: big ? bytesRatio <= 0.001 : null });
  add({ measure: 'load, file + journal at the compaction threshold', entries: n, subject: 'depcache', value: f.loadWithJournalMs, unit: 'ms', baseline: 'load, compacted', ratio: f.loadJournalRatio, target: '≤ 1.15×', met: f.loadJournalRatio <= 1.15, note: `journal ${(f.journalShare * 100).toFixed(0)}% of the file; ratio: median of ${quick ? 3 : 5} pairs' ratios, each pair loaded in turn` });
  add({ measure: 'load, compacted', entries: n, subject: 'depcache', value: f.loadCompactedMs, unit: 'ms', baseline: '', ratio: null, target: '', met: null });
  add({ measure: 'exit flush, 100 dirty keys', entries: n, subject: 'depcache', value: f.exitFlush100Ms, unit: 'ms', baseline: '', ratio: null, target: big ? '≤ 20 ms' : '', met: big ? f.exitFlush100Ms <= 20 : null });
  add({ measure: 'longest stall during compaction', entries: n, subject: 'depcache', value: f.compactionStallMs, unit: 'ms', baseline: 'idle, same heap', ratio: f.compactionStallMs / f.idleStallMs, target: big ? '≤ 20 ms' : '', met: big ? f.compactionStallMs <= 20 : null, note: `from a heap at rest, median of ${quick ? 3 : 5} compactions, each took ${formatMs(f.compactionMs)}` });
  add({ measure: 'longest stall during compaction from the files', entries: n, subject: 'depcache', value: f.filesCompactionStallMs, unit: 'ms', baseline: 'idle, same heap', ratio: f.filesCompactionStallMs / f.idleStallMs, target: big ? '≤ 20 ms' : '', met: big ? f.filesCompactionStallMs <= 20 : null, note: `memory not the saved state (an unsaved edit, or another process's records): base and journal decoded on a worker thread, median of ${quick ? 3 : 5}, each took ${formatMs(f.filesCompactionMs)}` });
  add({ measure: 'longest stall during compaction, right after the edits', entries: n, subject: 'depcache', value: f.busyHeapCompactionStallMs, unit: 'ms', baseline: 'idle, same heap', ratio: f.busyHeapCompactionStallMs / f.idleStallMs, target: '', met: null, note: 'the major GC the edits started still runs: its scavenges and final pause land in the compaction' });
  add({ measure: 'longest stall, idle, same heap', entries: n, subject: 'depcache', value: f.idleStallMs, unit: 'ms', baseline: '', ratio: null, target: '', met: null, note: 'nothing running, as long as the compaction took' });
}

async function redis(): Promise<void> {
  const big = quick ? 100_000 : 1_000_000;
  const f = inFreshProcess<RedisFigures | null>('redis', big, quick ? 3 : 5);
  if (!f) {
    failures.push('Redis figures: skipped, no redis-server on this machine (.ci/run installs it)');
    return;
  }
  add({ measure: 'Redis: save of 10 changed entries', entries: big, subject: 'RedisStore', value: f.saveChangedMs, unit: 'ms', baseline: '', ratio: null, target: big >= 1_000_000 ? '≤ 5 ms' : '', met: big >= 1_000_000 ? f.saveChangedMs <= 5 : null });
  add({ measure: 'Redis: a follower applies a remote save of 10 keys', entries: big, subject: 'RedisStore', value: f.followMs, unit: 'ms', baseline: '', ratio: null, target: big >= 1_000_000 ? '≤ 5 ms' : '', met: big >= 1_000_000 ? f.followMs <= 5 : null });
  add({ measure: 'Redis: longest stall while a snapshot is written', entries: big, subject: 'RedisStore', value: f.snapshotStallMs, unit: 'ms', baseline: '', ratio: null, target: big >= 1_000_000 ? '≤ 20 ms' : '', met: big >= 1_000_000 ? f.snapshotStallMs <= 20 : null, note: `in the background, after the save that passed the share; the write took ${formatMs(f.snapshotMs)}` });
  add({ measure: 'Redis: longest stall, save of 20% changed keys', entries: big, subject: 'RedisStore', value: f.changedSave.stallMs, unit: 'ms', baseline: '', ratio: null, target: big >= 1_000_000 ? '≤ 20 ms' : '', met: big >= 1_000_000 ? f.changedSave.stallMs <= 20 : null, note: `encoded a part at a time; the save took ${formatMs(f.changedSave.totalMs)}` });
  add({ measure: 'Redis: invalidation reaching a dependent in other processes, p99', entries: 1, subject: 'connectBus', value: f.bus.p99Ms, unit: 'ms', baseline: '', ratio: null, target: '≤ 200 ms', met: f.bus.p99Ms <= 200, note: `${f.bus.samples} arrivals (${f.bus.samples / f.bus.listeners} invalidations, one every 10 ms, to ${f.bus.listeners} listener processes): p50 ${formatMs(f.bus.p50Ms)}, max ${formatMs(f.bus.maxMs)}` });
  for (const load of f.loads) {
    add({ measure: 'full load', entries: load.entries, subject: 'v8 file store', value: load.fileMs, unit: 'ms', baseline: '', ratio: null, target: '', met: null });
    add({ measure: 'full load', entries: load.entries, subject: 'RedisStore (snapshot + log)', value: load.redisMs, unit: 'ms', baseline: 'v8 file store', ratio: load.redisMs / load.fileMs, target: '≤ 1.5×', met: load.redisMs / load.fileMs <= 1.5 });
  }
}

function table(): string {
  const notes = failures.map((f) => `\n\nFailed (not a depcache figure): ${f}`).join('');
  return tableRows() + notes;
}

function tableRows(): string {
  const lines = [
    '| measure | entries | subject | median | ratio | baseline | target | met |',
    '|---|---:|---|---:|---:|---|---|:---:|',
  ];
  for (const f of figures) {
    const ratio = f.ratio === null ? '' : `${f.ratio.toFixed(2)}×`;
    const met = f.met === null ? '' : f.met ? 'yes' : '**no**';
    lines.push(
      `| ${f.measure} | ${formatCount(f.entries)} | ${f.subject} | ${show(f)} | ${ratio} | ${f.baseline} | ${f.target} | ${met} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (!(globalThis as { gc?: unknown }).gc) console.error('note: run with --expose-gc for heap figures (npm run bench does)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-bench-'));
  const started = Date.now();
  try {
    console.error(`depcache bench (${quick ? 'quick' : 'full'}: ${RUNS} runs, medians) on ${os.cpus().length} cores, Node ${process.version}`);
    if (phase('importCost')) importTime();
    if (phase('getSet')) await getSet();
    if (phase('expiry')) await expiry();
    if (phase('saveAndLoad')) await saveAndLoad(dir);
    if (phase('heap')) heap();
    if (phase('memoHit')) memoHit();
    if (phase('pools')) await pools();
    if (phase('stall')) await stall();
    if (phase('savePaths')) savePathStalls();
    if (phase('journal')) await journal();
    if (phase('redis')) await redis();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const output = table();
  const header = `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench${quick ? ' -- --quick' : ''}\` (Node ${process.version}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB; ${((Date.now() - started) / 1000).toFixed(0)} s).`;
  console.log(`\n${header}\n\n${output}\n`);
  if (jsonOut) {
    fs.mkdirSync(path.dirname(path.resolve(jsonOut)), { recursive: true });
    fs.writeFileSync(jsonOut, JSON.stringify({ quick, node: process.version, at: new Date().toISOString(), figures }, null, 2));
  }
  if (writeReadme && only === undefined) {
    const readme = path.join(__dirname, '..', 'README.md');
    const text = fs.readFileSync(readme, 'utf8');
    const start = '<!-- bench:start -->';
    const end = '<!-- bench:end -->';
    const i = text.indexOf(start);
    const j = text.indexOf(end);
    if (i < 0 || j < i) throw new Error('README.md lacks the bench markers');
    fs.writeFileSync(readme, `${text.slice(0, i + start.length)}\n${header}\n\n${output}\n${text.slice(j)}`);
  }
}

main().then(
  // keyv-file leaves a debounce timer; the bench is done, so leave without waiting for it.
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
