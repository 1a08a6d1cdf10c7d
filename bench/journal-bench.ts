import * as fs from 'node:fs';
import { CacheManager, PersistentCache } from '../lib';
import { DEFAULT_COMPACT_SHARE } from '../lib/store/file-store';
import { probe } from './stall';
import { median } from './stats';
import type { Row } from './workload';

export interface JournalFigures {
  readonly entries: number;
  readonly fullSaveMs: number;
  readonly fullSaveBytes: number;
  readonly tenEditSaveMs: number;
  readonly tenEditSaveBytes: number;
  readonly journalShare: number;
  readonly loadWithJournalMs: number;
  readonly loadCompactedMs: number;
  readonly loadJournalRatio: number;
  readonly exitFlush100Ms: number;
  readonly compactionStallMs: number;
  readonly busyHeapCompactionStallMs: number;
  readonly idleStallMs: number;
  readonly compactionMs: number;
  readonly filesCompactionStallMs: number;
  readonly filesCompactionMs: number;
}

/**
 * The journal's figures on one cache of `entries.size` entries, medians of `runs`: a whole save
 * against a save after 10 edits; a load with a journal just under the compaction threshold
 * against the load of the same data compacted; the exit flush with 100 dirty keys; and the
 * longest event-loop stall while a compaction runs.
 */
async function quietHeap(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, 300));
}

export async function journalBench(entries: Map<string, Row>, runs: number, dir: string): Promise<JournalFigures> {
  // Compactions only when this bench asks: an automatic one, started by the save that crosses
  // the threshold, would run in the background of the load figures and leave the compaction
  // probe nothing to do. The journal is still grown to the default threshold.
  const manager = new CacheManager('journal', { baseDirectory: dir, fileStore: { compactShare: 1 } });
  const cache = new PersistentCache<string, Row>('big', { manager, contents: entries });
  const keys = [...entries.keys()];
  let edit = 0;
  const editSome = (n: number) => {
    for (let i = 0; i < n; i++) {
      const key = keys[(edit++ * 7919) % keys.length] as string;
      cache.set(key, { ...(cache.get(key) as Row), score: edit });
    }
  };

  const full: number[] = [];
  const fullBytes: number[] = [];
  const ten: number[] = [];
  const tenBytes: number[] = [];
  for (let run = -1; run < runs; run++) {
    // A whole save: clear() says the saved state is to be replaced.
    cache.clear();
    for (const [k, v] of entries) cache.set(k, v);
    let start = performance.now();
    await cache.save();
    if (run >= 0) full.push(performance.now() - start);
    if (run >= 0) fullBytes.push(cache.stats.lastSaveBytes ?? 0);
    editSome(10);
    start = performance.now();
    await cache.save();
    if (run >= 0) ten.push(performance.now() - start);
    if (run >= 0) tenBytes.push(cache.stats.lastSaveBytes ?? 0);
  }

  // A journal just under the compaction threshold (a share of the base, see FileStore).
  const base = fs.statSync(cache.path).size;
  const threshold = DEFAULT_COMPACT_SHARE * base;
  const journalPath = `${cache.path}.journal`;
  const journalSize = () => (fs.existsSync(journalPath) ? fs.statSync(journalPath).size : 0);
  while (journalSize() < threshold * 0.9) {
    editSome(Math.max(10, Math.floor(keys.length / 100)));
    await cache.save();
  }
  const journalShare = journalSize() / base;
  // Kept as it is (file + journal) for the loads below, which alternate between this copy and
  // the compacted file: one load varies by ±15% with the heap it lands in, so the two are
  // measured in turns, each from a heap at rest (the GC debt of the edits is not theirs).
  const withJournal = `${dir}-with-journal`;
  fs.cpSync(dir, withJournal, { recursive: true });
  const loadOnce = async (baseDirectory: string): Promise<number> => {
    const reader = new CacheManager('journal', { baseDirectory });
    const copy = new PersistentCache<string, Row>('big', { manager: reader });
    await quietHeap();
    const start = performance.now();
    await copy.load();
    const ms = performance.now() - start;
    await reader.close(); // nothing changed: closing writes nothing
    return ms;
  };

  // The exit path: 100 dirty keys, flushed synchronously as the process exit handler does.
  const flush: number[] = [];
  for (let run = -1; run < runs; run++) {
    editSome(100);
    const start = performance.now();
    (manager as unknown as { flushSync(): unknown[] }).flushSync();
    if (run >= 0) flush.push(performance.now() - start);
  }

  // The stall of a compaction, measured from a heap at rest (`quiet`) and, as the bench did
  // before, straight after the edits that grew the journal (`busy`: their major GC cycle is
  // still running, see probe()). Each a median of `runs` compactions of a journal grown again.
  const grow = async () => {
    while (journalSize() < threshold * 0.9) {
      editSome(Math.max(10, Math.floor(keys.length / 100)));
      await cache.save();
    }
  };
  const quiet: Array<{ stallMs: number; totalMs: number }> = [];
  const busy: Array<{ stallMs: number; totalMs: number }> = [];
  quiet.push(await probe(() => cache.compact(), { quietHeap: true }));
  if (fs.existsSync(journalPath)) throw new Error('the compaction left its journal');
  // The same heap with nothing running, as long as the compaction took: its own collections.
  const idle = await probe(() => new Promise((resolve) => setTimeout(resolve, median(quiet.map((c) => c.totalMs)))), { quietHeap: true });
  const journalLoads: number[] = [];
  const compactedLoads: number[] = [];
  try {
    for (let run = -1; run < runs; run++) {
      // Each pair in turn order, which changes every run (the first load of a pair lands in
      // the heap the previous pair left).
      const journalFirst = run % 2 === 0;
      const first = journalFirst ? await loadOnce(withJournal) : undefined;
      const compacted = await loadOnce(dir);
      const journaled = first ?? (await loadOnce(withJournal));
      if (run >= 0) {
        journalLoads.push(journaled);
        compactedLoads.push(compacted);
      }
    }
  } finally {
    fs.rmSync(withJournal, { recursive: true, force: true });
  }
  const loadWithJournalMs = median(journalLoads);
  const loadCompactedMs = median(compactedLoads);
  // The median of the pairs' ratios: a pair shares the heap and the machine's moment.
  const loadJournalRatio = median(journalLoads.map((ms, i) => ms / (compactedLoads[i] as number)));
  while (busy.length < runs) {
    await grow();
    busy.push(await probe(() => cache.compact()));
    if (quiet.length < runs) {
      await grow();
      quiet.push(await probe(() => cache.compact(), { quietHeap: true }));
    }
  }
  // From the files: an unsaved edit keeps memory from being written as the base (as another
  // process's records would), so the base and journal are decoded and re-encoded.
  const fromFiles: Array<{ stallMs: number; totalMs: number }> = [];
  while (fromFiles.length < runs) {
    await grow();
    editSome(1);
    fromFiles.push(await probe(() => cache.compact(), { quietHeap: true }));
    if (fs.existsSync(journalPath)) throw new Error('the compaction from files left its journal');
    await cache.save();
  }
  await manager.close();
  return {
    entries: entries.size,
    fullSaveMs: median(full),
    fullSaveBytes: median(fullBytes),
    tenEditSaveMs: median(ten),
    tenEditSaveBytes: median(tenBytes),
    journalShare,
    loadWithJournalMs,
    loadCompactedMs,
    loadJournalRatio,
    exitFlush100Ms: median(flush),
    compactionStallMs: median(quiet.map((c) => c.stallMs)),
    busyHeapCompactionStallMs: median(busy.map((c) => c.stallMs)),
    idleStallMs: idle.stallMs,
    compactionMs: median(quiet.map((c) => c.totalMs)),
    filesCompactionStallMs: median(fromFiles.map((c) => c.stallMs)),
    filesCompactionMs: median(fromFiles.map((c) => c.totalMs)),
  };
}
