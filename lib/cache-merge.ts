/*
 * Applying what another writer saved (another process following the same file, a Redis bus) to
 * a cache, key by key, in slices that yield to the event loop. Keys edited here and not saved
 * yet are left alone: this process's next save writes them. Nothing applied counts as an edit.
 */
import type { CacheCore } from './cache-core';
import { applySaved, armPurge, trimToMax } from './expiry/cache-expiry';
import { DecodedEntries } from './store/decoded-entries';
import type { JournalRecord } from './store/journal';
import { StoredMap } from './store/store-save';

// A merge checks its time every this many keys, and yields once a slice has run this long.
const MERGE_CHECK_EVERY = 256;
const MERGE_SLICE_MS = 5;

// A Set doubles its table in one go: past 2^20 keys one add rehashed the lot in 117 ms (the
// follow merge's longest stall at 1M entries). Split into this many Sets, none grows past
// 1/SHARDS of the keys, so each rehash is that much shorter.
const SHARDS = 64;

/** A Set of keys split into shards, picked from a string's last characters or an integer's low bits. */
export class KeySet {
  readonly #shards: Set<unknown>[] = Array.from({ length: SHARDS }, () => new Set());

  #shard(key: unknown): Set<unknown> {
    const shards = this.#shards;
    if (typeof key === 'string') {
      const n = key.length;
      // The last two characters: numbered keys (`key-123`) vary there; others fall where they may.
      return shards[n === 0 ? 0 : (key.charCodeAt(n - 1) + 31 * (n > 1 ? key.charCodeAt(n - 2) : 0)) & (SHARDS - 1)] as Set<unknown>;
    }
    if (typeof key === 'number' && Number.isInteger(key)) return shards[key & (SHARDS - 1)] as Set<unknown>;
    return shards[0] as Set<unknown>;
  }

  add(key: unknown): void {
    this.#shard(key).add(key);
  }

  delete(key: unknown): void {
    this.#shard(key).delete(key);
  }

  has(key: unknown): boolean {
    return this.#shard(key).has(key);
  }
}

/** Another writer's save: its records in order, read at once or part by part, or a whole saved state. */
export type SavedUpdate =
  | { records: JournalRecord[] }
  | { parts: AsyncIterable<JournalRecord> }
  | { whole: DecodedEntries | Map<unknown, unknown> };

/**
 * Applies `update` to the cache of `core` (run in its queue by the caller): `records` in order,
 * or a `whole` saved state (keys it lacks are removed). Resolves false when it stopped (or never
 * started) because everything here counts as unsaved.
 */
export async function mergeUpdate(core: CacheCore<unknown>, update: SavedUpdate): Promise<boolean> {
  const map = core.map;
  const log = core.log;
  let dirty: Set<unknown> = log.unsavedKeys();
  if (log.all) return false; // everything here is unsaved: this save decides
  const now = core.clock();
  let applied = false;
  const apply = (key: unknown, value: unknown, remove: boolean) => {
    if (dirty.has(key)) return;
    applied = true;
    applySaved(core, key, value, remove, now);
  };
  // Applied in slices, yielding to the event loop: a merge of a million keys is not one stall.
  // Keys edited here meanwhile are unsaved edits, and stay; once everything here counts as
  // unsaved (a clear), the merge stops, as it would not have started.
  let sliceStart = performance.now();
  let editsSeen = core.edits;
  let sinceCheck = 0;
  // After any await: false once the merge must stop; keys edited meanwhile count as dirty.
  const refresh = (): boolean => {
    if (core.edits === editsSeen) return true;
    editsSeen = core.edits;
    if (log.all || !core.hasContents) return false;
    dirty = log.unsavedKeys();
    return true;
  };
  // True at once on most keys, a promise only when it yields: an await of an async call per
  // key made a promise per key (with the async hooks' resources for each), a million of them
  // per merge, and their garbage lengthened the scavenges and marking steps the merge runs into.
  const yieldNow = async (): Promise<boolean> => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    sliceStart = performance.now();
    return refresh();
  };
  const paced = (): true | Promise<boolean> => {
    if (++sinceCheck < MERGE_CHECK_EVERY) return true;
    sinceCheck = 0;
    if (performance.now() - sliceStart < MERGE_SLICE_MS) return true;
    return yieldNow();
  };
  let ok: true | Promise<boolean>; // what paced() gave, awaited only when a promise
  let generation: string | undefined;
  const applyRecord = async (record: JournalRecord): Promise<boolean> => {
    const { sets, deletes } = record;
    for (let i = 0; i < sets.length; i += 2) {
      apply(sets[i], sets[i + 1], false);
      if ((ok = paced()) !== true && !(await ok)) return false;
    }
    for (const key of deletes) {
      apply(key, undefined, true);
      if ((ok = paced()) !== true && !(await ok)) return false;
    }
    if (record.generation !== undefined) generation = record.generation;
    return true;
  };
  const merge = async (): Promise<boolean> => {
    if ('records' in update) {
      for (const record of update.records) if (!(await applyRecord(record))) return false;
    } else if ('parts' in update) {
      for await (const record of update.parts) if (!refresh() || !(await applyRecord(record))) return false;
    } else {
      const saved = update.whole;
      const seen = new KeySet();
      if (saved instanceof DecodedEntries) {
        for (const pairs of saved.batches) {
          for (let i = 0; i < pairs.length; i += 2) {
            seen.add(pairs[i]);
            apply(pairs[i], pairs[i + 1], false);
            if ((ok = paced()) !== true && !(await ok)) return false;
          }
        }
        for (const record of saved.records) {
          for (let i = 0; i < record.sets.length; i += 2) seen.add(record.sets[i]);
          for (const key of record.deletes) seen.delete(key);
          if (!(await applyRecord(record))) return false;
        }
        generation = saved.meta.generation;
      } else {
        for (const [key, value] of saved) {
          seen.add(key);
          apply(key, value, false);
          if ((ok = paced()) !== true && !(await ok)) return false;
        }
        if (saved instanceof StoredMap) generation = saved.generation;
      }
      // Keys the saved state lacks are removed (walking the live map: a key added meanwhile is an unsaved edit, kept).
      for (const key of Map.prototype.keys.call(map)) {
        if (!seen.has(key)) apply(key, undefined, true);
        if ((ok = paced()) !== true && !(await ok)) return false;
      }
    }
    if (generation !== undefined) core.setGeneration(generation);
    armPurge(core);
    trimToMax(core);
    return true;
  };
  try {
    return await merge();
  } finally {
    // Readers that keep derived state (memoize's index) see a change, even of a merge that stopped partway.
    if (applied) core.contentsMerged++;
  }
}
