import { mapSize } from './store/snapshot';

// The log holds at least this many edits before its duplicates are folded.
const CHANGE_LOG_MIN = 4096;
const mapHas = Map.prototype.has;

/** What a save took of the log (and gives back if it fails). */
export interface TakenChanges<K> {
  /** Keys set or deleted since the last save, repeats included. */
  readonly keys: K[];
  /** Keys deleted while only deletes were logged (see {@link ChangeLog.keys}). */
  readonly deletes: K[];
  /** Everything must be written, not only `keys`. */
  readonly all: boolean;
  /** ...and it replaces what is saved. */
  readonly reset: boolean;
}

/**
 * Which keys of a cache changed since its last save, for stores that write only those. Pure
 * bookkeeping: the cache pushes onto `keys` on every edit (a push costs a few ns; a Set.add,
 * hashing the key, ten times that on the hot path), and duplicates are folded when a save takes
 * them or the log passes `limit`.
 */
export class ChangeLog<K> {
  /**
   * Keys edited since the last save, pushed by the cache's set/delete. null while not tracking,
   * or while everything counts as changed (then only deletes are kept, in `deletes`, for a save
   * that writes every entry).
   */
  keys: K[] | null = null;
  deletes: K[] = [];
  tracking = false;
  /** When `keys` grows past this, the cache calls {@link overflowed}. */
  limit = CHANGE_LOG_MIN;
  /** Everything must be rewritten (cleared, built, loaded elsewhere). */
  all = false;
  /** ...and it replaces what is saved (a clear, new contents, a deleted saved state). */
  reset = false;
  // A log of mostly repeats turns into "all changed" (journaling stores).
  #allOnOverflow = false;

  /** Starts recording; nothing is known to be saved yet. */
  track(allOnOverflow: boolean): void {
    if (this.tracking) return;
    this.tracking = true;
    this.#allOnOverflow = allOnOverflow;
    this.keys = [];
    this.all = true;
  }

  /** Every entry counts as changed (a clear, new contents); `reset`: they replace the saved state. */
  markAll(reset: boolean): void {
    if (!this.tracking) return;
    // Every entry is written anyway: a journaling store logs only deletes from here (a refill of
    // a million keys would otherwise log each, and the save fold them at its start).
    this.keys = this.#allOnOverflow ? null : [];
    this.deletes = [];
    this.all = true;
    this.reset ||= reset;
  }

  /**
   * The log outgrew its limit: fold its duplicates (a key set again and again). What is left is
   * at most the keys ever present, so memory stays bounded and nothing is forgotten (a delete
   * included); the limit grows with it, so folding costs O(1) per edit over time.
   */
  overflowed(map: Map<K, unknown>): void {
    const unique = [...new Set(this.keys)];
    const size = mapSize.call(map as Map<unknown, unknown>);
    if (this.#allOnOverflow && unique.length > size / 2) {
      // Most keys changed: the next save writes every entry, so stop logging sets (the hot
      // path's push) and keep only the deletes it must also write.
      this.all = true;
      this.deletes = unique.filter((key) => !mapHas.call(map, key));
      this.keys = null;
      return;
    }
    this.keys = unique;
    this.limit = Math.max(CHANGE_LOG_MIN, 2 * unique.length, 2 * size);
  }

  /** A key deleted from the map: logged (or kept as a delete, while only deletes are). */
  deleted(key: K, map: Map<K, unknown>): void {
    const keys = this.keys;
    if (keys !== null) {
      if (keys.push(key) > this.limit) this.overflowed(map);
    } else if (this.tracking) this.deletes.push(key);
  }

  /** Memory is what is saved now (a save, or a load that found it): an empty log. */
  forget(size: number): void {
    if (!this.tracking) return;
    this.#empty(size);
  }

  /** A load settled: memory equals the store, unless nothing was loaded. */
  settleLoad(loaded: boolean, size: number): void {
    if (!this.tracking) return;
    this.#empty(size);
    this.all = !loaded;
  }

  /** Takes the changes for a save; keys changed while it runs go into a new log. */
  take(size: number): TakenChanges<K> {
    const taken = { keys: this.keys ?? [], deletes: this.deletes, all: !this.tracking || this.all, reset: this.reset };
    // Not tracking: nothing is logged (the hot path's push stays off), every save is whole.
    if (this.tracking) this.#empty(size);
    return taken;
  }

  /** After a failed save: what it took is unsaved again, with what changed meanwhile. */
  restore(taken: TakenChanges<K>): void {
    if (!this.tracking) return;
    const log = [...taken.keys];
    for (const key of this.keys ?? []) log.push(key);
    this.keys = log;
    this.deletes = [...taken.deletes, ...this.deletes];
    this.all ||= taken.all;
    this.reset ||= taken.reset;
  }

  /** Whether anything is logged as unsaved. */
  get hasUnsaved(): boolean {
    return this.all || (this.keys?.length ?? 0) > 0 || this.deletes.length > 0;
  }

  /** Every key logged as unsaved. */
  unsavedKeys(): Set<K> {
    return new Set<K>([...(this.keys ?? []), ...this.deletes]);
  }

  #empty(size: number): void {
    this.keys = [];
    this.deletes = [];
    this.all = false;
    this.reset = false;
    this.limit = Math.max(CHANGE_LOG_MIN, 2 * size);
  }
}
