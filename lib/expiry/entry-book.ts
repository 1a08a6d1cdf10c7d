/*
 * The bookkeeping behind `ttlMs` and `maxEntries`: each entry's value, expiry time and, with a
 * bound, its recency, in slots. Pure: every time is passed in, nothing here reads a clock or
 * arms a timer.
 *
 * The book has no key index of its own: the cache's Map maps each key to its slot, so a `get`
 * or a `set` of a present key costs one hash lookup, as in lru-cache, and making an entry
 * recent relinks two neighbours in typed arrays.
 */

const NONE = -1;

/** Values, expiry times (ms since the epoch; Infinity for never) and recency, by slot. */
export class EntryBook<K, V> {
  #keys: (K | undefined)[] = [];
  #values: (V | undefined)[] = [];
  #expires: Float64Array;
  // The recency list, least recently used first, by slot; kept only when `recency` is on.
  #prev: Int32Array;
  #next: Int32Array;
  #head = NONE;
  #tail = NONE;
  readonly #recency: boolean;
  #free: number[] = [];
  #used = 0; // slots ever handed out
  #finite = 0; // entries with a finite expiry
  #earliest = Number.POSITIVE_INFINITY;

  constructor(recency: boolean, capacity = 16) {
    this.#recency = recency;
    this.#expires = new Float64Array(capacity).fill(Number.POSITIVE_INFINITY);
    this.#prev = new Int32Array(recency ? capacity : 0);
    this.#next = new Int32Array(recency ? capacity : 0);
  }

  /** Entries held (expired or not). */
  get size(): number {
    return this.#used - this.#free.length;
  }

  /** How many entries have a finite expiry: while 0, no read needs the clock. */
  get expiringCount(): number {
    return this.#finite;
  }

  /**
   * No entry expires before this (a lower bound: it is not raised when the earliest entry goes,
   * only by {@link expired}, which sees them all).
   */
  get earliestExpiry(): number {
    return this.#earliest;
  }

  /**
   * The value in `slot` if it is live (and the entry becomes the most recent), else undefined.
   * The clock is read only for an entry that expires at all.
   */
  read(slot: number, clock: () => number): V | undefined {
    const at = this.#expires[slot] as number;
    if (at !== Number.POSITIVE_INFINITY && at <= clock()) return undefined;
    return this.touch(slot);
  }

  /** The value in `slot`, which becomes the most recent; for a book where nothing expires. */
  touch(slot: number): V | undefined {
    if (this.#recency && slot !== this.#tail) this.#moveToTail(slot);
    return this.#values[slot];
  }

  /** Whether the entry in `slot` is live now (the clock read only for an entry that expires). */
  liveNow(slot: number, clock: () => number): boolean {
    const at = this.#expires[slot] as number;
    return at === Number.POSITIVE_INFINITY || at > clock();
  }

  /** Whether the entry in `slot` is live at `now` (its recency is left alone). */
  live(slot: number, now: number): boolean {
    return (this.#expires[slot] as number) > now;
  }

  value(slot: number): V | undefined {
    return this.#values[slot];
  }

  expiresAt(slot: number): number {
    return this.#expires[slot] as number;
  }

  /** A new entry, the most recent; returns its slot. */
  add(key: K, value: V, expiresAt: number): number {
    const slot = this.#take();
    this.#keys[slot] = key;
    this.#values[slot] = value;
    if (this.#recency) this.#link(slot);
    this.#setExpiry(slot, expiresAt);
    return slot;
  }

  /** A present entry set again: the most recent, with a new value and expiry time. */
  update(slot: number, value: V, expiresAt: number): void {
    if (this.#recency && slot !== this.#tail) this.#moveToTail(slot);
    this.#values[slot] = value;
    if (this.#expires[slot] !== expiresAt) this.#setExpiry(slot, expiresAt);
  }

  /** Forgets the entry in `slot`; the slot is handed out again later. */
  free(slot: number): void {
    this.#setExpiry(slot, Number.POSITIVE_INFINITY);
    if (this.#recency) this.#unlink(slot);
    this.#keys[slot] = undefined;
    this.#values[slot] = undefined;
    this.#free.push(slot);
  }

  clear(): void {
    this.#keys = [];
    this.#values = [];
    this.#free = [];
    this.#used = 0;
    this.#finite = 0;
    this.#earliest = Number.POSITIVE_INFINITY;
    this.#head = this.#tail = NONE;
    this.#expires.fill(Number.POSITIVE_INFINITY);
  }

  /** The key of the least recently used entry (expired or not); undefined when empty or without recency. */
  oldest(): K | undefined {
    return this.#head === NONE ? undefined : this.#keys[this.#head];
  }

  /** Keys expired at `now`, by slot; also tightens {@link earliestExpiry} to the truth. */
  expired(now: number): K[] {
    const out: K[] = [];
    if (this.#finite === 0) {
      this.#earliest = Number.POSITIVE_INFINITY;
      return out;
    }
    let earliest = Number.POSITIVE_INFINITY;
    const expires = this.#expires;
    for (let slot = 0; slot < this.#used; slot++) {
      const at = expires[slot] as number;
      if (at === Number.POSITIVE_INFINITY) continue;
      if (at <= now) out.push(this.#keys[slot] as K);
      else if (at < earliest) earliest = at;
    }
    this.#earliest = earliest;
    return out;
  }

  #setExpiry(slot: number, at: number): void {
    const before = this.#expires[slot] as number;
    if (before !== Number.POSITIVE_INFINITY) this.#finite--;
    if (at !== Number.POSITIVE_INFINITY) {
      this.#finite++;
      if (at < this.#earliest) this.#earliest = at;
    }
    this.#expires[slot] = at;
  }

  #take(): number {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const slot = this.#used++;
    if (slot === this.#expires.length) this.#grow();
    return slot;
  }

  #grow(): void {
    const capacity = this.#expires.length * 2;
    const expires = new Float64Array(capacity).fill(Number.POSITIVE_INFINITY);
    expires.set(this.#expires);
    this.#expires = expires;
    if (this.#recency) {
      const prev = new Int32Array(capacity);
      prev.set(this.#prev);
      this.#prev = prev;
      const next = new Int32Array(capacity);
      next.set(this.#next);
      this.#next = next;
    }
  }

  // The list's ends are #head and #tail; the head's prev and the tail's next are never read (they
  // may be stale), which saves a write on each move, as lru-cache does.
  #link(slot: number): void {
    this.#prev[slot] = this.#tail;
    if (this.#tail === NONE) this.#head = slot;
    else this.#next[this.#tail] = slot;
    this.#tail = slot;
  }

  #unlink(slot: number): void {
    const head = this.#head;
    const tail = this.#tail;
    if (slot === head) {
      if (slot === tail) this.#head = this.#tail = NONE;
      else this.#head = this.#next[slot] as number;
    } else if (slot === tail) {
      this.#tail = this.#prev[slot] as number;
    } else {
      const prev = this.#prev[slot] as number;
      const next = this.#next[slot] as number;
      this.#next[prev] = next;
      this.#prev[next] = prev;
    }
  }

  /** Makes `slot` the most recent; it is not the tail now, so the list has another entry. */
  #moveToTail(slot: number): void {
    const prev = this.#prev;
    const next = this.#next;
    if (slot === this.#head) this.#head = next[slot] as number;
    else {
      const before = prev[slot] as number;
      const after = next[slot] as number;
      next[before] = after;
      prev[after] = before;
    }
    const tail = this.#tail;
    prev[slot] = tail;
    next[tail] = slot;
    this.#tail = slot;
  }
}
