/*
 * The bookkeeping behind `ttlMs` and `maxEntries`: each key's expiry time and, with a bound,
 * its recency. Pure: every time is passed in, nothing here reads a clock or arms a timer.
 *
 * Keys live in slots (a key → slot map, then typed arrays by slot), as in lru-cache: a `get`
 * costs one hash lookup, and making an entry recent relinks two neighbours instead of moving
 * anything in a Map.
 */

const NONE = -1;

/** Expiry times (ms since the epoch; Infinity for never) and recency of a cache's entries. */
export class EntryBook<K, V> {
  readonly #index = new Map<K, number>();
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

  get size(): number {
    return this.#index.size;
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

  /** The value of a live entry, made most recent; undefined when absent or expired at `now`. */
  get(key: K, now: number): V | undefined {
    const slot = this.#index.get(key);
    if (slot === undefined || (this.#expires[slot] as number) <= now) return undefined;
    if (this.#recency && slot !== this.#tail) this.#moveToTail(slot);
    return this.#values[slot];
  }

  /** Whether `key` is present and not expired at `now` (its recency is left alone). */
  has(key: K, now: number): boolean {
    const slot = this.#index.get(key);
    return slot !== undefined && (this.#expires[slot] as number) > now;
  }

  /** Whether `key` is present (expired or not). */
  holds(key: K): boolean {
    return this.#index.has(key);
  }

  /** The expiry time of `key` (Infinity: never), or undefined when absent. */
  expiresAt(key: K): number | undefined {
    const slot = this.#index.get(key);
    return slot === undefined ? undefined : this.#expires[slot];
  }

  /** Sets `key`, most recent, expiring at `expiresAt`; true when it was not present. */
  set(key: K, value: V, expiresAt: number): boolean {
    const slot = this.#index.get(key);
    if (slot === undefined) {
      this.#insert(key, value, expiresAt);
      return true;
    }
    // The hot path (a key set again) kept small, so it inlines into the cache's set.
    if (this.#recency && slot !== this.#tail) this.#moveToTail(slot);
    this.#values[slot] = value;
    if (this.#expires[slot] !== expiresAt) this.#setExpiry(slot, expiresAt);
    return false;
  }

  #insert(key: K, value: V, expiresAt: number): void {
    const slot = this.#take();
    this.#index.set(key, slot);
    this.#keys[slot] = key;
    this.#values[slot] = value;
    this.#expires[slot] = Number.POSITIVE_INFINITY;
    if (this.#recency) this.#link(slot);
    this.#setExpiry(slot, expiresAt);
  }

  /** Removes `key`; true when it was present. */
  delete(key: K): boolean {
    const slot = this.#index.get(key);
    if (slot === undefined) return false;
    this.#index.delete(key);
    this.#setExpiry(slot, Number.POSITIVE_INFINITY);
    if (this.#recency) this.#unlink(slot);
    this.#keys[slot] = undefined;
    this.#values[slot] = undefined;
    this.#free.push(slot);
    return true;
  }

  clear(): void {
    this.#index.clear();
    this.#keys = [];
    this.#values = [];
    this.#free = [];
    this.#used = 0;
    this.#finite = 0;
    this.#earliest = Number.POSITIVE_INFINITY;
    this.#head = this.#tail = NONE;
    this.#expires.fill(Number.POSITIVE_INFINITY);
  }

  /** The least recently used key (expired or not), or undefined when empty or without recency. */
  oldest(): K | undefined {
    return this.#head === NONE ? undefined : this.#keys[this.#head];
  }

  /** Keys expired at `now`, oldest slot first; also tightens {@link earliestExpiry} to the truth. */
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
    const expires = new Float64Array(capacity);
    expires.set(this.#expires);
    expires.fill(Number.POSITIVE_INFINITY, this.#expires.length);
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

  #link(slot: number): void {
    this.#prev[slot] = this.#tail;
    this.#next[slot] = NONE;
    if (this.#tail === NONE) this.#head = slot;
    else this.#next[this.#tail] = slot;
    this.#tail = slot;
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot] as number;
    const next = this.#next[slot] as number;
    if (prev === NONE) this.#head = next;
    else this.#next[prev] = next;
    if (next === NONE) this.#tail = prev;
    else this.#prev[next] = prev;
  }

  /** Makes `slot` the most recent; it is not the tail now, so it has a next and the list a tail. */
  #moveToTail(slot: number): void {
    const prev = this.#prev;
    const next = this.#next;
    const before = prev[slot] as number;
    const after = next[slot] as number;
    if (before === NONE) this.#head = after;
    else next[before] = after;
    prev[after] = before;
    const tail = this.#tail;
    prev[slot] = tail;
    next[slot] = NONE;
    next[tail] = slot;
    this.#tail = slot;
  }
}
