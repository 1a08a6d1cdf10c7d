/*
 * Expiry and bounds of a cache (ttlMs, maxEntries, a per-entry ttl). A cache that uses them
 * keeps, in its Map, each key's slot in an EntryBook (which holds the value, its expiry time and
 * its recency), so get and set hash the key once. Its reads and writes are those of a twin
 * prototype (expiringTwin); everything that reads the Map underneath (snapshots, journal
 * records, change-savers) reads it through a transform that turns a slot back into the value
 * as it is saved.
 */
import { type InspectOptions, inspect } from 'node:util';
import { type CacheCore, coreOf } from '../cache-core';
import type { SetOptions } from '../cache';
import { describeValue } from '../options';
import { type EntryTransform, LiveSnapshot, SKIP_ENTRY, mapSize } from '../store/snapshot';
import { EntryBook } from './entry-book';
import { EXPIRES_FIELD, isExpiryEnvelope, wrapExpiring } from './envelope';
import { slottedMaps } from './slotted';

// The purge timer waits at least this long: expired entries are invisible meanwhile anyway.
const PURGE_MIN_MS = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;

const mapSet = Map.prototype.set;
const mapGet = Map.prototype.get;
const mapHas = Map.prototype.has;
const mapDelete = Map.prototype.delete;

type Book = EntryBook<unknown, unknown>;
type Core = CacheCore<unknown>;
type Methods = Record<string | symbol, (...args: unknown[]) => unknown>;

/** When `key`'s entry expires; undefined when it never does, or is absent or already expired. */
export function expiresAt(core: Core, key: unknown): number | undefined {
  const book = core.book;
  if (book === null) return undefined;
  const slot = mapGet.call(core.map, key) as number | undefined;
  if (slot === undefined) return undefined;
  const at = book.expiresAt(slot);
  if (at === Number.POSITIVE_INFINITY || at <= core.clock()) return undefined;
  return at;
}

/** Removes the expired entries now (each an edit); how many. */
export function purgeExpired(core: Core): number {
  const book = core.book;
  if (book === null || !core.hasContents || !core.writable) return 0;
  return book.purge(core.clock(), (key) => removeSlotted(core, book, key));
}

/** `set(key, value, options)`: a lifetime of its own (≤ 0: the key is removed). */
export function setWithOptions(core: Core, key: unknown, value: unknown, options: SetOptions | number): unknown {
  const ttlMs = checkSetOptions(core.name, options) ?? core.ttlMs;
  const behaviour = core.behaviour as Methods;
  if (ttlMs === 0) {
    // Already expired: the entry is gone, as an expired one is.
    behaviour.delete?.call(core.map, key);
    return core.map;
  }
  if (ttlMs !== Number.POSITIVE_INFINITY) core.callbacks.assertKeepsExpiry('set');
  if (core.book === null) enableExpiry(core);
  // The expiring set (the behaviour just changed), or the missing/closed guard on it; never
  // the cache's set, which may be an override that called here.
  return (core.behaviour as Methods).set?.call(core.map, key, value, options);
}

/**
 * Starts keeping expiry times and recency: each value moves into the book and the Map keeps
 * its slot. Entries present now never expire, except the contents given to the constructor
 * (`fresh`), which are set now with the cache's lifetime.
 */
export function enableExpiry(core: Core, fresh = false): void {
  if (core.book !== null) return;
  core.book = new EntryBook<unknown, unknown>(core.maxEntries !== Number.POSITIVE_INFINITY);
  slottedMaps.add(core.map);
  fillBook(core, fresh);
  core.callbacks.applyPrototype();
  trimToMax(core);
  armPurge(core);
}

/**
 * Moves every value of the Map into the (emptied) book, leaving its slot in the Map, in place
 * (the order stays): values saved with an expiry time are unwrapped, and entries that expired
 * meanwhile are dropped. `fresh` contents (built, given, adopted) are set now, with the cache's
 * lifetime; loaded ones keep what they were saved with.
 */
function fillBook(core: Core, fresh: boolean): void {
  const book = core.book as Book;
  const map = core.map;
  // A save reading the Map now must keep writing the values it began with, not slots.
  core.snapshot?.preserveAll();
  book.clear();
  const now = core.clock();
  const fallback = fresh && core.ttlMs !== Number.POSITIVE_INFINITY ? now + core.ttlMs : Number.POSITIVE_INFINITY;
  const expired: unknown[] = [];
  const pairs: unknown[] = [];
  Map.prototype.forEach.call(map, (value: unknown, key: unknown) => pairs.push(key, value));
  for (let i = 0; i < pairs.length; i += 2) {
    const key = pairs[i];
    let value = pairs[i + 1];
    let at = fallback;
    if (typeof value === 'object' && value !== null && isExpiryEnvelope(value)) {
      at = value[EXPIRES_FIELD];
      value = value.value;
    }
    if (at <= now) expired.push(key);
    else mapSet.call(map, key, book.add(key, value, at));
  }
  // Expired while nobody ran: never seen. Not edits: the saved copies expire on every load.
  for (const key of expired) mapDelete.call(map, key);
}

/** The expiry of an entry set now with `options` (undefined: the cache's ttlMs). */
function expiryOf(core: Core, options: SetOptions | number | undefined): number {
  const ttlMs = (options === undefined ? undefined : checkSetOptions(core.name, options)) ?? core.ttlMs;
  if (ttlMs === Number.POSITIVE_INFINITY) return ttlMs;
  if (ttlMs === 0) return Number.NEGATIVE_INFINITY; // already expired: the set removes the key
  if (options !== undefined) core.callbacks.assertKeepsExpiry('set');
  return core.clock() + ttlMs;
}

/** After the Map was refilled with values (a load, a build, adopted contents): into the book. */
export function expiryAfterReplace(core: Core, fresh: boolean): void {
  if (core.book === null) {
    let saved = false;
    Map.prototype.forEach.call(core.map, (value: unknown) => {
      if (!saved && typeof value === 'object' && value !== null && isExpiryEnvelope(value)) saved = true;
    });
    if (!saved) return;
    enableExpiry(core, fresh); // fills the book
  } else fillBook(core, fresh);
  armPurge(core);
}

/**
 * Applies one entry of another writer's save without counting it as an edit (a merge): `value`
 * as saved (with its expiry envelope, if any), or the key removed.
 */
export function applySaved(core: Core, key: unknown, value: unknown, remove: boolean, now: number): void {
  const map = core.map;
  core.snapshot?.preserve(key);
  let at = Number.POSITIVE_INFINITY;
  if (!remove && typeof value === 'object' && value !== null && isExpiryEnvelope(value)) {
    enableExpiry(core);
    at = value[EXPIRES_FIELD];
    value = value.value;
  }
  const book = core.book;
  if (book === null) {
    if (remove) mapDelete.call(map, key);
    else mapSet.call(map, key, value);
    return;
  }
  const slot = mapGet.call(map, key) as number | undefined;
  if (remove || at <= now) {
    if (slot === undefined) return;
    mapDelete.call(map, key);
    book.free(slot);
  } else if (slot === undefined) mapSet.call(map, key, book.add(key, value, at));
  else book.update(slot, value, at);
}

/** Removes `key` as a delete does (an edit, logged for the next save) and frees its slot. */
function removeSlotted(core: Core, book: Book, key: unknown): void {
  const slot = mapGet.call(core.map, key) as number | undefined;
  if (slot === undefined) return;
  core.baseDelete(key); // keeps the snapshot's copy (it reads the slot)
  book.free(slot);
}

/** Evicts least recently used entries while there are more than maxEntries. */
export function trimToMax(core: Core): void {
  const book = core.book;
  if (book === null || core.maxEntries === Number.POSITIVE_INFINITY || !core.hasContents) return;
  while (mapSize.call(core.map) > core.maxEntries) evictOldest(core, book);
}

function evictOldest(core: Core, book: Book): void {
  const victim = book.oldest();
  if (victim === undefined) return;
  removeSlotted(core, book, victim);
  core.manager.notify('evict', { cache: core.name, key: victim });
}

/** Arms the unref'd timer that purges expired entries, if some entry may expire. */
export function armPurge(core: Core): void {
  const book = core.book;
  if (book === null || core.purgeTimer !== undefined || book.expiringCount === 0) return;
  const wait = Math.min(Math.max(book.earliestExpiry - core.clock(), PURGE_MIN_MS), MAX_TIMER_MS);
  core.purgeTimer = setTimeout(() => {
    core.purgeTimer = undefined;
    try {
      purgeExpired(core);
    } catch (err) {
      core.manager.reportError(err);
    }
    if (core.writable) armPurge(core);
  }, wait);
  core.purgeTimer.unref();
}

/** Stops the purge timer for good (the manager closed). */
export function disarmPurge(core: Core): void {
  if (core.purgeTimer !== undefined) clearTimeout(core.purgeTimer);
  core.purgeTimer = undefined;
}

/**
 * How a save reads the Map underneath (`slots`: the cache's own, which holds slots) or a plain
 * copy of values: each entry as it is saved, with its expiry time, or SKIP_ENTRY once it has
 * expired. Null when entries are saved as they are.
 */
export function saveTransform(core: Core, slots: boolean, now = core.clock()): EntryTransform | null {
  const book = core.book;
  if (book === null) return null;
  if (slots) {
    return (_key, slot) => {
      const at = book.expiresAt(slot as number);
      const value = book.value(slot as number);
      if (at === Number.POSITIVE_INFINITY) return value;
      return at <= now ? SKIP_ENTRY : wrapExpiring(value, at);
    };
  }
  if (book.expiringCount === 0) return null;
  return (key, value) => {
    const slot = mapGet.call(core.map, key) as number | undefined;
    const at = slot === undefined ? Number.POSITIVE_INFINITY : book.expiresAt(slot);
    if (at === Number.POSITIVE_INFINITY) return value;
    return at <= now ? SKIP_ENTRY : wrapExpiring(value, at);
  };
}

/** A copy-on-write snapshot of `map` (the cache, or a pre-processed copy) as a save writes it. */
export function snapshotOf(core: Core, map: Map<unknown, unknown>): LiveSnapshot {
  const now = core.clock();
  const transform = saveTransform(core, map === core.map, now);
  const book = core.book;
  // The entries the transform leaves out, counted at the same instant: a file's header states its size.
  const skipped = transform === null || book === null ? 0 : countExpired(map, book, now);
  return new LiveSnapshot(map, core.generation, transform, skipped);
}

/** What a change-saver reads: the cache itself, or a view of the values as they are saved. */
export function persistedView(core: Core): ReadonlyMap<unknown, unknown> {
  const transform = saveTransform(core, true);
  return transform === null ? core.map : new PersistedView(core.map, transform);
}

/** A plain copy of the entries, without expired ones (a user's saver gets values only). */
export function visibleEntries(core: Core, into: Map<unknown, unknown>): void {
  (core.behaviour as Methods).forEach?.call(core.map, (value: unknown, key: unknown) => into.set(key, value));
}

const expiringPrototypes = new WeakMap<object, object>();

/**
 * The prototype of a cache that expires or bounds entries: a twin of its class's prototype
 * whose reads skip expired entries and go through the book. Built once per class.
 */
export function expiringTwin(real: object): object {
  let twin = expiringPrototypes.get(real);
  if (twin !== undefined) return twin;
  // The time for a scan of every entry: never read when nothing expires.
  const now = (core: Core, book: Book) => (book.expiringCount === 0 ? 0 : core.clock());
  const methods = {
    get(this: Map<unknown, unknown>, key: unknown): unknown {
      const slot = mapGet.call(this, key) as number | undefined;
      if (slot === undefined) return undefined;
      const core = coreOf(this);
      const book = core.book as Book;
      // While nothing expires (maxEntries alone), the clock is not even looked up.
      return book.expiringCount === 0 ? book.touch(slot) : book.read(slot, core.clock);
    },
    has(this: Map<unknown, unknown>, key: unknown): boolean {
      const core = coreOf(this);
      if (!core.hasContents) core.callbacks.contentsMissing(); // LazyCache builds here, as its own has() does
      const slot = mapGet.call(this, key) as number | undefined;
      if (slot === undefined) return false;
      return (core.book as Book).liveNow(slot, core.clock);
    },
    // The cache's set, inlined (a call more is a tenth of this path), with the book.
    set(this: Map<unknown, unknown>, key: unknown, value: unknown, options?: SetOptions | number): Map<unknown, unknown> {
      const core = coreOf(this);
      const book = core.book as Book;
      const at = options === undefined ? (core.ttlMs === Number.POSITIVE_INFINITY ? core.ttlMs : core.clock() + core.ttlMs) : expiryOf(core, options);
      if (at === Number.NEGATIVE_INFINITY) {
        (core.behaviour as Methods).delete?.call(this, key);
        return this;
      }
      if (core.snapshot !== null) core.snapshot.preserve(key); // reads the old slot: before it changes
      const log = core.log;
      const logged = log.keys;
      if (logged !== null && logged.push(key) > log.limit) log.overflowed(this);
      const slot = mapGet.call(this, key) as number | undefined;
      if (slot !== undefined) book.update(slot, value, at);
      else {
        mapSet.call(this, key, book.add(key, value, at));
        if (book.size > core.maxEntries) evictOldest(core, book);
      }
      if (at !== Number.POSITIVE_INFINITY && core.purgeTimer === undefined) armPurge(core);
      if (++core.edits >= core.editTrigger) core.callbacks.thresholdReached();
      return this;
    },
    delete(this: Map<unknown, unknown>, key: unknown): boolean {
      const slot = mapGet.call(this, key) as number | undefined;
      if (slot === undefined) return false;
      const core = coreOf(this);
      const book = core.book as Book;
      const visible = book.liveNow(slot, core.clock);
      core.baseDelete(key);
      book.free(slot);
      return visible;
    },
    clear(this: Map<unknown, unknown>): void {
      const core = coreOf(this);
      core.baseClear(); // the snapshot keeps its copies first (through the book)
      (core.book as Book).clear();
    },
    forEach(this: Map<unknown, unknown>, fn: (value: unknown, key: unknown, map: Map<unknown, unknown>) => void, thisArg?: unknown): void {
      const core = coreOf(this);
      const book = core.book as Book;
      const at = now(core, book);
      Map.prototype.forEach.call(this, (slot: unknown, key: unknown) => {
        if (book.live(slot as number, at)) fn.call(thisArg, book.value(slot as number), key, this);
      });
    },
    *entries(this: Map<unknown, unknown>): IterableIterator<[unknown, unknown]> {
      const core = coreOf(this);
      const book = core.book as Book;
      const at = now(core, book);
      for (const [key, slot] of Map.prototype.entries.call(this) as IterableIterator<[unknown, number]>) {
        if (book.live(slot, at)) yield [key, book.value(slot)];
      }
    },
    *keys(this: Map<unknown, unknown>): IterableIterator<unknown> {
      for (const entry of methods.entries.call(this)) yield entry[0];
    },
    *values(this: Map<unknown, unknown>): IterableIterator<unknown> {
      for (const entry of methods.entries.call(this)) yield entry[1];
    },
    // console.log shows the entries, not the slots the Map holds underneath.
    [inspect.custom](this: Map<unknown, unknown>, _depth: number, options: InspectOptions): string {
      const visible = coreOf(this).hasContents ? new Map(methods.entries.call(this)) : new Map();
      return `${this.constructor.name} ${inspect(visible, options)}`;
    },
  };
  twin = Object.create(real) as object;
  for (const name of Reflect.ownKeys(methods)) {
    Object.defineProperty(twin, name, { configurable: true, writable: true, value: methods[name as keyof typeof methods] });
  }
  Object.defineProperty(twin, Symbol.iterator, { configurable: true, writable: true, value: methods.entries });
  expiringPrototypes.set(real, twin);
  return twin;
}

/**
 * A cache as a change-saver reads it: the entries not expired, each value as it is saved (with
 * its expiry time, when it has one).
 */
class PersistedView<K> implements ReadonlyMap<K, unknown> {
  readonly #map: Map<K, unknown>;
  readonly #transform: EntryTransform;

  constructor(map: Map<K, unknown>, transform: EntryTransform) {
    this.#map = map;
    this.#transform = transform;
  }

  get size(): number {
    return mapSize.call(this.#map);
  }

  has(key: K): boolean {
    return mapHas.call(this.#map, key) && this.#transform(key, mapGet.call(this.#map, key)) !== SKIP_ENTRY;
  }

  get(key: K): unknown {
    if (!mapHas.call(this.#map, key)) return undefined;
    const saved = this.#transform(key, mapGet.call(this.#map, key));
    return saved === SKIP_ENTRY ? undefined : saved;
  }

  forEach(fn: (value: unknown, key: K, map: ReadonlyMap<K, unknown>) => void): void {
    for (const [key, value] of this) fn(value, key, this);
  }

  *entries(): MapIterator<[K, unknown]> {
    for (const [key, value] of Map.prototype.entries.call(this.#map) as IterableIterator<[K, unknown]>) {
      const saved = this.#transform(key, value);
      if (saved !== SKIP_ENTRY) yield [key, saved];
    }
  }

  *keys(): MapIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): MapIterator<unknown> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): MapIterator<[K, unknown]> {
    return this.entries();
  }
}

/** A lifetime option: a number > 0 (Infinity: never expires). */
export function checkLifetime(name: string, option: string, value: unknown): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new TypeError(`${name}: ${option}: expected a number of ms > 0 (or Infinity), got ${describeValue(value)}`);
  }
  return value;
}

export function checkMaxEntries(name: string, value: unknown): number {
  if (value === undefined || value === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(`${name}: maxEntries: expected a whole number ≥ 1 (or Infinity), got ${describeValue(value)}`);
  }
  return value;
}

/** The ttlMs of `set`'s options (undefined when not given); a TypeError names a bad one. */
function checkSetOptions(name: string, options: unknown): number | undefined {
  if (typeof options === 'number' && !Number.isNaN(options)) {
    // Keyv's convention (store.set(key, value, ttl)): a lifetime in ms; ≤ 0 is already expired.
    return options <= 0 ? 0 : options;
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${name}: set: options: expected { ttlMs } or a number of ms, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'ttlMs') throw new TypeError(`${name}: set: unknown option '${key}': the only one is 'ttlMs'`);
  }
  const { ttlMs } = options as SetOptions;
  return ttlMs === undefined ? undefined : checkLifetime(name, 'set: ttlMs', ttlMs);
}

/** How many of `map`'s keys the book says have expired (the clock read once). */
function countExpired(map: Map<unknown, unknown>, book: Book, now: number): number {
  let n = 0;
  for (const key of book.expired(now)) if (mapHas.call(map, key)) n++;
  return n;
}
