/*
 * The state of one cache, shared by the modules that each do one of its jobs (expiry, saving,
 * merging another writer's save, the twin prototypes). The cache class (cache.ts) is only the
 * surface users call: its methods delegate here, and no module reaches into another's private
 * fields. One core per cache, reached through coreOf(), which only cache.ts can give.
 */
import { ChangeLog, type TakenChanges } from './change-log';
import type { EntryBook } from './expiry/entry-book';
import type { CacheStore } from './store/cache-store';
import { type Preserver, PreserverFan, mapSize } from './store/snapshot';
import type { CacheManager } from './manager';

const mapDelete = Map.prototype.delete;
const mapClear = Map.prototype.clear;

/** What the core calls back in the cache class (its protected members, given at construction). */
export interface CacheCallbacks {
  /** The cache's editThresholdReached(). */
  readonly thresholdReached: () => void;
  /** Throws a TypeError when the cache's store would drop an expiry time given at `where`. */
  readonly assertKeepsExpiry: (where: string) => void;
  /** Gives the cache the prototype of its present state (see cache-prototypes.ts). */
  readonly applyPrototype: () => void;
  /** The cache's contentsMissing(): true when contents are there now (LazyCache builds). */
  readonly contentsMissing: () => boolean;
  /** The cache's stateSettled(): after a load, save, build or delete succeeded. */
  readonly stateSettled: (event: 'load' | 'save' | 'build' | 'delete') => void;
}

/** The fields every part of a cache reads and writes; plain fields, read on the hot path. */
export class CacheCore<K = unknown> {
  hasContents = true; // as built by Map's constructor; the constructor settles it
  writable = true; // false once the manager closed: writes could never be saved
  // Whose methods do get/set/delete/... in the cache's present state (contents or not, expiry,
  // closed): the cache's own prototype, or, for a user's subclass, what its calls dispatch to.
  behaviour: object;
  // Which contents these are: new for every build or adoption, kept through saves and loads.
  generation = newGeneration();
  // Edits ever made, and how many of them the saved state covers; their difference is "dirty".
  edits = 0;
  savedEdits = 0;
  // When edits reaches this, the cache's editThresholdReached() runs: one compare per edit.
  editTrigger = Number.POSITIVE_INFINITY;
  // The snapshot a save is reading while the map may change; it keeps old values on change.
  // With several readers at once (a save during a compaction), a fan that calls each.
  snapshot: Preserver | null = null;
  readonly readers: Preserver[] = [];
  // Keys changed since the last save, for stores that write only those (off until tracked).
  readonly log = new ChangeLog<K>();
  // What the save under way took of the log: if the process exits before it is written, the
  // exit flush writes it too.
  inflight: TakenChanges<K> | null = null;
  // Expiry and recency (ttlMs, maxEntries, per-entry ttl): null until one is used, so a cache
  // that never uses them keeps Map's own get and pays one compare in set.
  book: EntryBook<unknown, unknown> | null = null;
  purgeTimer: NodeJS.Timeout | undefined; // armed while some entry may expire
  contentsMerged = 0; // another writer's saves applied here (part of contentsVersion)
  // The saver and loader that stand for the store (replacing one, as any hook can be, turns
  // the store's saves off); null without a store.
  storeSaver: unknown = null;
  storeLoader: unknown = null;
  // The last load found nothing saved: contents built then merge with whatever another
  // process saved meanwhile, where a rebuild over a saved state replaces it.
  foundNothingSaved = false;
  // For `cache.stats`.
  loads = 0;
  saves = 0;
  builds = 0;
  lastSaveAt: number | undefined;
  lastSaveMs: number | undefined;
  lastSaveBytes: number | undefined;

  constructor(
    readonly map: Map<K, unknown>,
    readonly name: string,
    readonly manager: CacheManager,
    readonly ttlMs: number,
    readonly maxEntries: number,
    readonly clock: () => number,
    // A backend given as the `store` option, or null.
    readonly store: CacheStore | null,
    readonly callbacks: CacheCallbacks,
    behaviour: object,
  ) {
    this.behaviour = behaviour;
  }

  /** Has contents or not: the cache gets the prototype of that state. */
  setHasContents(has: boolean): void {
    if (has === this.hasContents) return;
    this.hasContents = has;
    this.callbacks.applyPrototype();
  }

  /** Counts `n` edits, and tells the cache once their count reaches its trigger. */
  countEdits(n: number): void {
    this.edits += n;
    if (this.edits >= this.editTrigger) this.callbacks.thresholdReached();
  }

  /** Map's delete under the cache's own, as an edit: the snapshot keeps its copy, the log the key. */
  baseDelete(key: K): boolean {
    if (this.snapshot !== null) this.snapshot.preserve(key);
    if (!mapDelete.call(this.map, key)) return false;
    this.log.deleted(key, this.map);
    if (++this.edits >= this.editTrigger) this.callbacks.thresholdReached();
    return true;
  }

  /** Map's clear under the cache's own: one edit per removed entry (at least one). */
  baseClear(): void {
    const removed = mapSize.call(this.map);
    if (this.snapshot !== null) this.snapshot.preserveAll();
    mapClear.call(this.map);
    this.log.markAll(true);
    this.countEdits(Math.max(1, removed));
  }

  /** Starts keeping old values for a reader of the live map (a save's, a compaction's). */
  openReader(reader: Preserver): void {
    this.readers.push(reader);
    this.snapshot = this.readers.length === 1 ? reader : new PreserverFan([...this.readers]);
  }

  closeReader(reader: Preserver): void {
    const i = this.readers.indexOf(reader);
    if (i >= 0) this.readers.splice(i, 1);
    const n = this.readers.length;
    this.snapshot = n === 0 ? null : n === 1 ? (this.readers[0] as Preserver) : new PreserverFan([...this.readers]);
  }

  setGeneration(generation: string): void {
    if (generation === this.generation) return;
    this.generation = generation;
    generationChanges++;
  }
}

// How many times any cache's generation changed in this process: lets a reader (memoize) keep
// the generations it depends on and know, with one compare, whether they may have changed.
let generationChanges = 0;

/** See {@link generationChanges}. @internal */
export function generationChangeCount(): number {
  return generationChanges;
}

export function newGeneration(): string {
  return crypto().randomUUID();
}

let access: ((cache: object) => CacheCore<unknown>) | undefined;

/** The core of a cache; cache.ts gives the way in once, as it loads (registerCoreAccess). */
export function coreOf(cache: object): CacheCore<unknown> {
  return (access as (cache: object) => CacheCore<unknown>)(cache);
}

/** Called once, by cache.ts: how a cache's private core is reached. */
export function registerCoreAccess(get: (cache: object) => CacheCore<unknown>): void {
  access = get;
}

/** node:crypto, loaded at first use: it is a tenth of what `require('depcache')` costs otherwise. */
function crypto(): typeof import('node:crypto') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:crypto') as typeof import('node:crypto');
}
