/*
 * The bookkeeping behind `ttlMs` and `maxEntries`: each entry's value, expiry time and, with a
 * bound, its recency, in slots. Pure: every time is passed in, nothing here reads a clock or
 * arms a timer.
 *
 * The book has no key index of its own: the cache's Map maps each key to its slot, so a `get`
 * or a `set` of a present key costs one hash lookup, as in lru-cache, and making an entry
 * recent relinks its neighbours in typed arrays (or, for the least recent one, nothing at all).
 */

const NONE = -1;

/** Values, expiry times (ms since the epoch; Infinity for never) and recency, by slot. */
export class EntryBook<K, V> {
  #keys: (K | undefined)[] = [];
  #values: (V | undefined)[] = [];
  #expires: Float64Array;
  // The recency ring, by slot (prev and next of each); kept only when `recency` is on.
  #prev: Int32Array;
  #next: Int32Array;
  #tail = NONE; // the most recent; the least recent follows it (see #link)
  readonly #recency: boolean;
  #free: number[] = [];
  #used = 0; // slots ever handed out
  #finite = 0; // entries with a finite expiry
  #earliest = Number.POSITIVE_INFINITY; // no held entry expires before this
  #setSince = Number.NEGATIVE_INFINITY; // during a purge: the earliest time given since it began

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
   * No entry held expires before this (a lower bound: it is not raised when the earliest entry
   * goes, only by {@link purge}, which sees them all). Reads rely on it: before this time no
   * entry's own expiry is looked at.
   */
  get earliestExpiry(): number {
    return this.#earliest;
  }

  /**
   * The value in `slot` if it is live (and the entry becomes the most recent), else undefined.
   * The clock is read only while some entry expires, and the entry's own time only once the
   * earliest expiry has come: until then every entry is live, and a read skips that memory.
   */
  read(slot: number, clock: () => number): V | undefined {
    if (this.#finite !== 0) {
      const now = clock();
      if (now >= this.#earliest && (this.#expires[slot] as number) <= now) return undefined;
    }
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
    this.#tail = NONE;
    this.#expires.fill(Number.POSITIVE_INFINITY);
  }

  /** The key of the least recently used entry (expired or not); undefined when empty or without recency. */
  oldest(): K | undefined {
    return this.#tail === NONE ? undefined : this.#keys[this.#next[this.#tail] as number];
  }

  /** Keys expired at `now`, by slot (nothing changes). */
  expired(now: number): K[] {
    return this.#scan(now).doomed;
  }

  /** The keys expired at `now`, and the earliest expiry time of the others. */
  #scan(now: number): { doomed: K[]; next: number } {
    const doomed: K[] = [];
    let next = Number.POSITIVE_INFINITY;
    if (this.#finite !== 0) {
      const expires = this.#expires;
      for (let slot = 0; slot < this.#used; slot++) {
        const at = expires[slot] as number;
        if (at === Number.POSITIVE_INFINITY) continue;
        if (at <= now) doomed.push(this.#keys[slot] as K);
        else if (at < next) next = at;
      }
    }
    return { doomed, next };
  }

  /**
   * Hands every key expired at `now` to `remove`, which must free its slot (the cache deletes
   * the key from its Map, then calls {@link free}); then tightens {@link earliestExpiry} to the
   * earliest entry left. Returns how many were removed.
   */
  purge(now: number, remove: (key: K) => void): number {
    const { doomed, next } = this.#scan(now);
    // #earliest stays low while the doomed go (each is still expired to a read meanwhile), and
    // if `remove` throws (some are left); an entry given a time meanwhile counts as well.
    this.#setSince = Number.POSITIVE_INFINITY;
    try {
      for (const key of doomed) remove(key);
      this.#earliest = Math.min(next, this.#setSince);
    } finally {
      this.#setSince = Number.NEGATIVE_INFINITY;
    }
    return doomed.length;
  }

  #setExpiry(slot: number, at: number): void {
    const before = this.#expires[slot] as number;
    if (before !== Number.POSITIVE_INFINITY) this.#finite--;
    if (at !== Number.POSITIVE_INFINITY) {
      this.#finite++;
      if (at < this.#earliest) this.#earliest = at;
      if (at < this.#setSince) this.#setSince = at;
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

  // The list is a ring: the tail (most recent) is followed by the head (least recent), so making
  // the head the most recent is a rotation, #tail = slot, with no link written. A scan that
  // reads every key in turn (an ETL pass) touches the head each time, and pays nothing for it.
  #link(slot: number): void {
    const tail = this.#tail;
    if (tail === NONE) {
      this.#prev[slot] = slot;
      this.#next[slot] = slot;
    } else {
      const head = this.#next[tail] as number;
      this.#prev[slot] = tail;
      this.#next[slot] = head;
      this.#next[tail] = slot;
      this.#prev[head] = slot;
    }
    this.#tail = slot;
  }

  #unlink(slot: number): void {
    const prev = this.#prev;
    const next = this.#next;
    const after = next[slot] as number;
    if (after === slot) {
      this.#tail = NONE; // it was the only entry
      return;
    }
    const before = prev[slot] as number;
    next[before] = after;
    prev[after] = before;
    if (slot === this.#tail) this.#tail = before;
  }

  /** Makes `slot` the most recent; it is not the tail now, so the list has another entry. */
  #moveToTail(slot: number): void {
    const tail = this.#tail;
    const prev = this.#prev;
    const next = this.#next;
    const head = next[tail] as number;
    if (slot !== head) {
      const before = prev[slot] as number;
      const after = next[slot] as number;
      next[before] = after;
      prev[after] = before;
      prev[slot] = tail;
      next[slot] = head;
      next[tail] = slot;
      prev[head] = slot;
    }
    this.#tail = slot;
  }
}
