// The longest event-loop stall on each path a save takes in the DEFAULT configuration (journal
// on, AutoSyncCache), as issue 29 measured them: the first save of a new cache, a whole rewrite
// after clear() and a refill, a journal append of many changed keys, a compaction, a small save
// while a compaction runs, an append that merges with another process's save, a follow merge,
// and (optionally) one very large value replaced.
//
//   node --expose-gc -r ts-node/register/transpile-only bench/save-paths.ts [entries] [--big-value]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AutoSyncCache, CacheManager, PersistentCache } from '../lib';
import { probe } from './stall';

type Value = { id: number; name: string };

/** What one run of the paths measured, in ms. */
export interface SavePathFigures {
  readonly entries: number;
  readonly firstSave: Stall;
  readonly firstSaveFiles: { baseBytes: number; journalBytes: number; compacted: boolean };
  readonly clearRefillSave: Stall;
  readonly changedSave: Stall & { keys: number };
  /** An append of 4% of the entries (below the compaction share). */
  readonly appendSave: Stall & { keys: number };
  readonly compaction: Stall;
  /** A 10-edit save started while a compaction runs: how long until it resolved. */
  readonly smallSaveDuringCompactionMs: number;
  readonly smallSaveIdleMs: number;
  readonly journalOffFirstSave: Stall;
  readonly mergeAppend: Stall;
  readonly followMerge: Stall & { keys: number };
  readonly bigValue?: Stall & { bytes: number };
}

interface Stall {
  stallMs: number;
  totalMs: number;
}

function fill(cache: Map<string, Value>, n: number, from = 0, tag = ''): void {
  for (let i = from; i < from + n; i++) cache.set(`key-${i}`, { id: i, name: `user ${i}${tag}` });
}

function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function savePaths(n: number, bigValue = false, peers = true): Promise<SavePathFigures> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-save-paths-'));
  try {
    const manager = new CacheManager('paths', { baseDirectory: root });
    const cache = await AutoSyncCache.open<string, Value>('big', { manager });
    fill(cache, n);
    const firstSave = await probe(() => cache.save());
    const firstSaveFiles = { baseBytes: sizeOf(cache.path), journalBytes: sizeOf(`${cache.path}.journal`), compacted: false };
    await cache.backgroundSettled();
    firstSaveFiles.compacted = sizeOf(cache.path) !== firstSaveFiles.baseBytes;

    cache.clear();
    fill(cache, n);
    const clearRefillSave = await probe(() => cache.save());
    await cache.backgroundSettled();

    const keys = Math.round(n / 5);
    fill(cache, keys, 0, ' changed');
    const changed = await probe(() => cache.save());
    // An append below the compaction share (4% of the entries: a journal record), twice: the
    // second passes the share, and the compaction runs in the background.
    const few = Math.round(n / 25);
    fill(cache, few, 0, ' appended');
    const append = await probe(() => cache.save());
    await cache.backgroundSettled();
    // In step with the files, this process would write the whole file rather than an append
    // that makes a compaction due; a record of another process's in between rules that out.
    const peerManager = new CacheManager('paths', { baseDirectory: root });
    const peer = peers ? await PersistentCache.open<string, Value>('big', { manager: peerManager }) : undefined;
    const nudge = async () => {
      if (peer === undefined) return;
      peer.set('peer', { id: -1, name: `peer ${performance.now()}` });
      await peer.save();
    };
    if (peers) await nudge();
    fill(cache, few, few, ' appended');
    await cache.save();
    // Without the peer's record no compaction is due (the saves write whole files): not measured.
    const compaction = peers ? await probe(() => cache.backgroundSettled()) : { stallMs: NaN, totalMs: NaN };

    // A 10-edit save while the same kind of compaction runs.
    fill(cache, few, 0, ' again');
    await cache.save();
    await nudge();
    fill(cache, few, few, ' again');
    await cache.save(); // passes the share: a compaction starts after it
    fill(cache, 10, n - 10, ' small');
    const t0 = performance.now();
    await cache.save();
    const smallSaveDuringCompactionMs = peers ? performance.now() - t0 : NaN;
    await cache.backgroundSettled();
    fill(cache, 10, n - 10, ' idle');
    const t1 = performance.now();
    await cache.save();
    const smallSaveIdleMs = performance.now() - t1;
    await peerManager.close();

    // The same first save with the journal off (a whole file, sliced).
    const offManager = new CacheManager('paths-off', { baseDirectory: path.join(root, 'off'), fileStore: { journal: false } });
    const off = await AutoSyncCache.open<string, Value>('big', { manager: offManager });
    fill(off, n);
    const journalOffFirstSave = await probe(() => off.save());
    await offManager.close();


    let mergeAppend: Stall = { stallMs: NaN, totalMs: NaN };
    let followMerge: Stall = { stallMs: NaN, totalMs: NaN };
    if (peers) {
      // Contents built after finding nothing saved, while another process saved: they merge (an
      // append of every entry), since that process's keys must not be lost.
      const mergeDir = path.join(root, 'merge');
      const mine = new CacheManager('shared', { baseDirectory: mergeDir });
      const theirs = new CacheManager('shared', { baseDirectory: mergeDir });
      const a = await PersistentCache.open<string, Value>('shared', { manager: mine });
      const b = await PersistentCache.open<string, Value>('shared', { manager: theirs });
      b.set('theirs', { id: -1, name: 'theirs' });
      await b.save();
      fill(a, n);
      mergeAppend = await probe(() => a.save());
      await a.backgroundSettled();

      // A follow merge: another process saves many changed keys, this one applies them.
      const follower = new CacheManager('shared', { baseDirectory: mergeDir });
      const f = await PersistentCache.open<string, Value>('shared', { manager: follower, followJournal: true });
      await b.invalidate();
      fill(b, keys, 0, ' theirs');
      await b.save();
      // Until the whole merge is over, not just its first key: the merge bumps contentsVersion
      // once, at its end, after the last changed key (and the walk for removed keys). A version
      // noted while the last key was still old is the merge's (or an earlier one's) start.
      const last = `key-${keys - 1}`;
      followMerge = await probe(async () => {
        const until = performance.now() + 120_000;
        let version = f.contentsVersion;
        while (f.get(last)?.name !== `user ${keys - 1} theirs` && performance.now() < until) {
          version = f.contentsVersion;
          await sleep(5);
        }
        while (f.contentsVersion === version && performance.now() < until) await sleep(5);
        if (f.get('key-0')?.name !== 'user 0 theirs') throw new Error('the follow merge did not apply key-0');
      });
      await follower.close();
      await theirs.close();
      await mine.close();
    }
    let big: (Stall & { bytes: number }) | undefined;
    if (bigValue) {
      const bigManager = new CacheManager('big-value', { baseDirectory: path.join(root, 'bigv') });
      const c = await PersistentCache.open<string, unknown>('one', { manager: bigManager });
      c.set('small', 1);
      c.set('huge', 'x'.repeat(200 * 1024 * 1024));
      await c.save();
      await c.backgroundSettled();
      c.set('huge', 'y'.repeat(200 * 1024 * 1024));
      const s = await probe(() => c.save());
      big = { ...s, bytes: 200 * 1024 * 1024 };
      await bigManager.close();
    }
    await manager.close();
    return {
      entries: n,
      firstSave,
      firstSaveFiles,
      clearRefillSave,
      changedSave: { ...changed, keys },
      appendSave: { ...append, keys: few },
      compaction,
      smallSaveDuringCompactionMs,
      smallSaveIdleMs,
      journalOffFirstSave,
      mergeAppend,
      followMerge: { ...followMerge, keys },
      bigValue: big,
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const n = Number(process.argv[2] ?? 1_000_000);
  // --skip-peers: no merge or follow rows (the 10M run, where a second and third copy do not fit).
  savePaths(n, process.argv.includes('--big-value'), !process.argv.includes('--skip-peers')).then(
    (figures) => console.log(JSON.stringify(figures, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v), 2)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
