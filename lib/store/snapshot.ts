/**
 * A point-in-time view of a map's entries, read batch by batch, that stays true to the moment it
 * was taken while the map keeps changing between batches.
 */
export interface EntrySnapshot {
  /** Distinct entries the map held when the snapshot was taken. */
  readonly size: number;
  /** The cache's generation (see `CacheMap.generation`), for stores that keep it. */
  readonly generation?: string;
  /**
   * Writes up to `max` entries into `out` as `k0, v0, k1, v1, ...` from index 0 and returns how
   * many; fewer than `max` means the snapshot is exhausted. An `out` of at least `2 * max`
   * elements (see {@link packedFrame}) is written in place and cut to what was written; any
   * other is appended to with push. Either way an array that starts packed (no holes) stays
   * packed, which v8.serialize needs to write it densely.
   */
  fill(out: unknown[], max: number): number;
}

const ABSENT: unique symbol = Symbol('absent');

let template: unknown[] = [];

/**
 * A packed array of `length` elements, for {@link EntrySnapshot.fill} to write in place: one
 * allocation of the frame's size, where pushing grows an array several times (a save of 1M
 * entries allocated 47 bytes of garbage an entry that way, and the GC work that brings ran in
 * the save's slices). A slice of a packed array is packed.
 */
export function packedFrame(length: number): unknown[] {
  if (template.length < length) {
    template = [];
    for (let i = 0; i < length; i++) template.push(0);
  }
  return template.slice(0, length);
}

/** What a snapshot's `transform` returns for an entry that is not to be written (it expired). */
export const SKIP_ENTRY: unique symbol = Symbol('skip entry');

/**
 * What a snapshot writes for an entry: the value as it is saved (with its expiry time, see
 * lib/expiry/envelope.ts), or SKIP_ENTRY.
 */
export type EntryTransform = (key: unknown, value: unknown) => unknown;
const mapValues = Map.prototype.values;
const mapHas = Map.prototype.has;
const mapGet = Map.prototype.get;
const mapKeys = Map.prototype.keys;
/** Map's own size getter, for a Map subclass whose `size` may be overridden. */
export const mapSize = Object.getOwnPropertyDescriptor(Map.prototype, 'size')?.get as (this: Map<unknown, unknown>) => number;

/**
 * Reads the live map through its own iterator, so taking the snapshot costs nothing up front
 * (copying a million keys at once would stall the event loop for 100+ ms). The owner calls
 * {@link preserve} before it changes a key while the snapshot is being read; the first old value
 * of each such key is kept (or ABSENT for keys added later):
 * - a key changed before the iterator reaches it is written with its old value;
 * - a key added later is skipped;
 * - a key deleted before the iterator reaches it is written after the iteration ends.
 * Keys whose visit cannot be told apart (deleted or changed after being written) are written
 * again with the same old value; a duplicate key in a file is harmless, as loading sets it twice.
 */
export class LiveSnapshot implements EntrySnapshot, Preserver {
  readonly size: number;
  readonly #map: Map<unknown, unknown>;
  // Keys and values walked in step (they visit the map's table in one order, and both are
  // advanced together): an entries iterator allocates a [key, value] array for every entry.
  #keys: Iterator<unknown> | null;
  #values: Iterator<unknown>;
  readonly #preserved = new Map<unknown, unknown>();
  #emitted: Set<unknown> | null = null;
  #tail: unknown[] | null = null;
  #tailIndex = 0;

  readonly #transform: EntryTransform | null;

  constructor(
    map: Map<unknown, unknown>,
    readonly generation?: string,
    transform: EntryTransform | null = null,
    skipped = 0,
  ) {
    this.#map = map;
    this.#transform = transform;
    // `skipped`: entries the transform will leave out (expired ones), so size stays exact.
    this.size = mapSize.call(map) - skipped;
    this.#keys = mapKeys.call(map) as Iterator<unknown>;
    this.#values = mapValues.call(map) as Iterator<unknown>;
  }

  /** Keeps `key`'s current state; call before every change to the live map. */
  preserve(key: unknown): void {
    if (this.#keys === null || this.#preserved.has(key)) return;
    const old = mapGet.call(this.#map, key);
    if (old === undefined && !mapHas.call(this.#map, key)) {
      this.#preserved.set(key, ABSENT);
      return;
    }
    // Transformed now, while the entry's expiry time is still the one it had.
    const saved = this.#transform === null ? old : this.#transform(key, old);
    this.#preserved.set(key, saved === SKIP_ENTRY ? ABSENT : saved);
  }

  /**
   * Whether `key` was present (and not expired) when the snapshot was taken; valid until the
   * iteration ends.
   */
  hadAtStart(key: unknown): boolean {
    if (this.#preserved.has(key)) return this.#preserved.get(key) !== ABSENT;
    const value = mapGet.call(this.#map, key);
    if (value === undefined && !mapHas.call(this.#map, key)) return false;
    return this.#transform === null || this.#transform(key, value) !== SKIP_ENTRY;
  }

  /** Keeps every key's current state (before a clear). */
  preserveAll(): void {
    if (this.#keys === null) return;
    for (const key of mapKeys.call(this.#map) as Iterable<unknown>) this.preserve(key);
  }

  fill(out: unknown[], max: number): number {
    const inPlace = out.length >= 2 * max;
    let n = 0;
    const keys = this.#keys;
    if (keys !== null) {
      const values = this.#values;
      const preserved = this.#preserved;
      while (n < max) {
        const step = keys.next();
        if (step.done) {
          this.#finishIteration();
          break;
        }
        const key = step.value;
        let value = values.next().value;
        if (preserved.size !== 0 && preserved.has(key)) {
          value = preserved.get(key);
          if (value === ABSENT) continue;
          (this.#emitted ??= new Set()).add(key);
        } else if (this.#transform !== null) {
          value = this.#transform(key, value);
          if (value === SKIP_ENTRY) continue;
        }
        if (inPlace) {
          out[2 * n] = key;
          out[2 * n + 1] = value;
        } else out.push(key, value);
        n++;
      }
    }
    const tail = this.#tail;
    if (tail !== null) {
      while (n < max && this.#tailIndex < tail.length) {
        if (inPlace) {
          out[2 * n] = tail[this.#tailIndex];
          out[2 * n + 1] = tail[this.#tailIndex + 1];
        } else out.push(tail[this.#tailIndex], tail[this.#tailIndex + 1]);
        this.#tailIndex += 2;
        n++;
      }
    }
    if (inPlace && out.length !== 2 * n) out.length = 2 * n;
    return n;
  }

  #finishIteration(): void {
    this.#keys = null;
    const tail: unknown[] = [];
    for (const [key, old] of this.#preserved) {
      if (old !== ABSENT && !this.#emitted?.has(key)) tail.push(key, old);
    }
    this.#tail = tail;
  }
}

/** What the cache calls before every change to the live map while a save or compaction reads it. */
export interface Preserver {
  preserve(key: unknown): void;
  preserveAll(): void;
}

/**
 * Several readers at once (a save while a compaction writes memory): each keeps its own old
 * values. Only built while two or more are open, so the common case calls one directly.
 */
export class PreserverFan implements Preserver {
  constructor(readonly members: readonly Preserver[]) {}

  preserve(key: unknown): void {
    for (const m of this.members) m.preserve(key);
  }

  preserveAll(): void {
    for (const m of this.members) m.preserveAll();
  }
}

/**
 * The changed keys of a save, read as they were when the save began, change by change, while
 * the map keeps changing between parts (copy-on-write, like {@link LiveSnapshot}). The log of
 * changed keys holds repeats (a push per edit is what the hot path can afford); they are folded
 * here, a part at a time, instead of into one Set of every key at the save's start (200 ms for
 * a million keys, in one go).
 */
export class ChangeSnapshot implements Preserver {
  readonly #map: Map<unknown, unknown>;
  readonly #log: readonly unknown[];
  #index = 0;
  readonly #seen = new Set<unknown>();
  readonly #preserved = new Map<unknown, unknown>();
  readonly #transform: EntryTransform | null;
  #done = false;

  constructor(
    map: Map<unknown, unknown>,
    log: readonly unknown[],
    readonly generation: string | undefined,
    transform: EntryTransform | null = null,
  ) {
    this.#map = map;
    this.#log = log;
    this.#transform = transform;
  }

  /** Changes at most (the log's length, repeats included). */
  get bound(): number {
    return this.#log.length;
  }

  preserve(key: unknown): void {
    // A key written already, or never in the log, needs nothing kept; the first old value wins.
    if (this.#done || this.#preserved.has(key) || this.#seen.has(key)) return;
    this.#preserved.set(key, this.#stateNow(key));
  }

  preserveAll(): void {
    if (this.#done) return;
    for (let i = this.#index; i < this.#log.length; i++) this.preserve(this.#log[i]);
  }

  fill(sets: unknown[], deletes: unknown[], max: number): number {
    let n = 0;
    const log = this.#log;
    const seen = this.#seen;
    while (n < max && this.#index < log.length) {
      const key = log[this.#index++];
      if (seen.has(key)) continue;
      seen.add(key);
      const state = this.#preserved.has(key) ? this.#preserved.get(key) : this.#stateNow(key);
      if (state === ABSENT) deletes.push(key);
      else sets.push(key, state);
      n++;
    }
    if (this.#index === log.length) this.#done = true;
    return n;
  }

  /** The key's saved form now: its (transformed) value, or ABSENT when gone or expired. */
  #stateNow(key: unknown): unknown {
    const value = mapGet.call(this.#map, key);
    if (value === undefined && !mapHas.call(this.#map, key)) return ABSENT;
    if (this.#transform === null) return value;
    const saved = this.#transform(key, value);
    return saved === SKIP_ENTRY ? ABSENT : saved;
  }
}

/**
 * A record of every entry (contents that merge with what another process saved): the keys
 * deleted since (those among `candidates` that were absent when the save began), then every
 * entry of the snapshot. Deletes go first: the snapshot keeps old states only until its
 * iteration ends.
 */
export class AllChangesSource {
  readonly #snapshot: LiveSnapshot;
  readonly #candidates: readonly unknown[];
  #index = 0;
  readonly #seen = new Set<unknown>();

  constructor(snapshot: LiveSnapshot, candidates: readonly unknown[]) {
    this.#snapshot = snapshot;
    this.#candidates = candidates;
  }

  get generation(): string | undefined {
    return this.#snapshot.generation;
  }

  fill(sets: unknown[], deletes: unknown[], max: number): number {
    let n = 0;
    const candidates = this.#candidates;
    while (n < max && this.#index < candidates.length) {
      const key = candidates[this.#index++];
      if (this.#seen.has(key)) continue;
      this.#seen.add(key);
      if (!this.#snapshot.hadAtStart(key)) {
        deletes.push(key);
        n++;
      }
    }
    if (n < max) n += this.#snapshot.fill(sets, max - n);
    return n;
  }
}
