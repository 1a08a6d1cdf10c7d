/*
 * What a load of the v8 file store gives back, apart from the store itself: a cache that fills
 * itself from a load (or merges one) needs this class, not the store's writer, its lock and its
 * compaction thread.
 */
import type { CacheFileMeta } from './file-format';
import { type JournalRecord, applyRecords } from './journal';

/**
 * Entries decoded from a file, batch by batch, each a flat `[k0, v0, k1, v1, ...]` array, then
 * the journal's records (sets and deletes) applied in order.
 */
export class DecodedEntries implements Iterable<[unknown, unknown]> {
  constructor(
    readonly batches: Iterable<unknown[]>,
    readonly meta: CacheFileMeta,
    readonly records: readonly JournalRecord[] = [],
  ) {}

  /** Adds every entry to `map` with Map's own `set`, bypassing any subclass bookkeeping. */
  fillInto(map: Map<unknown, unknown>): void {
    const set = Map.prototype.set;
    for (const pairs of this.batches) {
      for (let i = 0; i < pairs.length; i += 2) set.call(map, pairs[i], pairs[i + 1]);
    }
    applyRecords(map, this.records);
  }

  *[Symbol.iterator](): Iterator<[unknown, unknown]> {
    if (this.records.length === 0) {
      for (const pairs of this.batches) {
        for (let i = 0; i < pairs.length; i += 2) yield [pairs[i], pairs[i + 1]];
      }
      return;
    }
    const map = new Map<unknown, unknown>(); // cold path: a validator or postProcessor reads it
    this.fillInto(map);
    yield* map;
  }
}

