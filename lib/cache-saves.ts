/*
 * How a cache's save is written, on each way a backend plugs in: through a store given as the
 * `store` option (the public interface, cache-store.ts), a journaling file store (changes
 * appended, the whole file when they replace it), a change-saver (Redis), a copy-on-write
 * snapshot writer, or a user's saver given a copy. Also the synchronous exit flush of each, and
 * the load of a store with the onCorrupt policy. The cache class does the bookkeeping around
 * them (counters, events); what a save took of the change log is restored here when it fails.
 */
import type { AnyCacheMap, Processor, Saver } from './cache';
import type { CacheCore } from './cache-core';
import type { TakenChanges } from './change-log';
import { fillMap, toMap } from './contents';
import { CacheHookError, CorruptCacheFileError, DepcacheError, type HookName } from './errors';
import { persistedView, saveTransform, snapshotOf, visibleEntries } from './expiry/cache-expiry';
import type { CacheStore } from './store/cache-store';
import type { AppendResult, ChangesToSave, SaveResult } from './store/file-store';
import type { JournalRecord } from './store/journal';
import { CHANGE_SAVER, type ChangeSaver, SPILL_SYNC, type SyncSpiller } from './store/saver-marks';
import { ExitSaveRefused, HookStore } from './store/hook-store';
import { AllChangesSource, ChangeSnapshot, type EntrySnapshot, type LiveSnapshot, type Preserver, SKIP_ENTRY, mapSize } from './store/snapshot';
import { type ChangeSource, StoredMap, fromStored, slicedBatches, slicedParts, syncBatches } from './store/store-save';

type MaybePromise<T> = T | Promise<T>;
type Core = CacheCore<unknown>;
type Cache = AnyCacheMap;

/** What a journaling store offers a cache's saves. */
export interface JournalWriter {
  /** Whether there is a saved file to append to (else a save writes it whole). */
  hasBase(): boolean;
  /**
   * Writes the snapshot as the whole file unless, once the lock is held, a file exists (another
   * process saved first): then resolves undefined, and the caller appends instead.
   */
  writeIfNoBase(snapshot: EntrySnapshot): Promise<number | undefined>;
  /** Appends one save's record; undefined when there is nothing to append to (write whole). */
  append(record: JournalRecord): Promise<AppendResult | undefined>;
  /** The same, synchronously, for the exit flush. */
  appendSync(record: JournalRecord): AppendResult | undefined;
  /**
   * One save's changes (see FileStore.saveChanges): appended as one record read part by part,
   * or `whole` written as the new base; undefined when there is no base and no `whole`.
   */
  saveChanges(changes: ChangesToSave): Promise<SaveResult | undefined>;
  /** Whether the save should offer its whole map too (cheap, synchronous). */
  mayWriteWhole(bound: number, all: boolean): boolean;
  /** After an append: compacts in the background when the journal has grown enough. */
  afterAppend(result: AppendResult): void;
}

/** Writes a snapshot through a store that can read the live map copy-on-write. */
export type SnapshotWriter = (snapshot: EntrySnapshot) => Promise<number>;

/** The writers a cache class offers for its saver (see PersistentCache), each when it applies. */
export interface SaveWriters {
  readonly snapshot: SnapshotWriter | undefined;
  readonly journal: JournalWriter | undefined;
  readonly sync: ((snapshot: EntrySnapshot) => number) | undefined;
}

/** What one save wrote: bytes (file stores) and what it announces to other processes (Redis). */
export interface Written {
  readonly bytes?: number;
  readonly detail?: unknown;
}

/**
 * Writes one save of `cache` on the path its saver takes; null when there is nothing to write
 * (no contents, no saver, an empty cache with saveOnBlank off).
 */
export async function writeSave(cache: Cache, core: Core, writers: SaveWriters): Promise<Written | null> {
  const saver = cache.saver as Saver<unknown, unknown> | null;
  if (!core.hasContents || !saver) return null;
  const size = mapSize.call(core.map);
  const changeWriter = (saver as Partial<ChangeSaver<unknown, unknown>>)[CHANGE_SAVER];
  if (saver === core.storeSaver) {
    const contents = cache.preProcessor ? preProcessed(cache, core) : core.map;
    if (!cache.saveOnBlank && contents.size === 0) return null;
    await saveThroughStore(core, core.store as CacheStore, contents);
    return {};
  }
  if (changeWriter && !cache.preProcessor) {
    if (!cache.saveOnBlank && size === 0) return null;
    return { detail: await writeChanges(core, changeWriter) };
  }
  if (cache.preProcessor) {
    const contents = preProcessed(cache, core);
    if (!cache.saveOnBlank && contents.size === 0) return null;
    if (!writers.snapshot) {
      await saveThroughStore(core, hookStore(cache), contents, true);
      return {};
    }
    const bytes = await writers.snapshot(snapshotOf(core, contents));
    core.log.forget(mapSize.call(core.map)); // a pre-processed cache is always written whole
    return { bytes };
  }
  if (!cache.saveOnBlank && size === 0) return null;
  if (writers.journal !== undefined && writers.snapshot !== undefined && core.log.tracking) {
    return { bytes: await saveThroughJournal(core, writers.journal, writers.snapshot) };
  }
  if (writers.snapshot) return { bytes: await writeLiveSnapshot(core, writers.snapshot) };
  // A user's saver, called with a copy: through its adapter, as every store saves.
  await saveThroughStore(core, hookStore(cache), core.map, true);
  return {};
}

/** The cache's saver hook, as it is when the save begins, as a store. */
function hookStore(cache: Cache): HookStore {
  return new HookStore(cache.saver as Saver<unknown, unknown>);
}

/**
 * Saves synchronously if the cache is dirty and its saver can run without the event loop; the
 * exit flush. Throws a DepcacheError (EEXIT) naming the cache when its edits cannot be saved.
 */
export function flushSync(cache: Cache, core: Core, writers: SaveWriters): boolean {
  if (!core.hasContents || core.edits === core.savedEdits) return false;
  const saver = cache.saver as Saver<unknown, unknown> | null;
  const log = core.log;
  // A save still writing will never finish: what it took is unsaved again.
  if (core.inflight !== null) {
    log.restore(core.inflight);
    core.inflight = null;
  }
  if (saver !== null && saver === core.storeSaver) return flushStoreSync(cache, core, core.store as CacheStore);
  const size = mapSize.call(core.map);
  const spill = (saver as Partial<SyncSpiller> | null)?.[SPILL_SYNC];
  if (spill !== undefined && log.tracking && !cache.preProcessor) {
    if (!cache.saveOnBlank && size === 0) return false; // as save() would
    const edits = core.edits;
    const taken = log.take(size);
    const keys = new Set<unknown>(taken.keys);
    for (const key of taken.deletes) keys.add(key);
    try {
      spill(persistedView(core), { all: taken.all, reset: taken.reset, keys });
    } catch (err) {
      log.restore(taken);
      throw err;
    }
    core.savedEdits = edits;
    return true;
  }
  const write = writers.sync;
  if (!write) {
    if (saver === null) return false;
    const hooks = hookStore(cache);
    // Before the preProcessor runs: a saver that cannot run now is reported as such.
    const refusal = hooks.syncRefusal();
    if (refusal !== undefined) throw lostAtExit(core, refusal);
    return flushStoreSync(cache, core, hooks);
  }
  const edits = core.edits;
  const contents = cache.preProcessor ? preProcessed(cache, core) : core.map;
  if (!cache.saveOnBlank && contents.size === 0) return false;
  // O(changes) at exit too: append to the journal when the saved state allows it.
  const journal = cache.preProcessor ? undefined : writers.journal;
  if (journal !== undefined && log.tracking && !(log.all && log.reset)) {
    const appended = journal.appendSync(journalRecord(core, new Set(log.keys ?? []), log.deletes, log.all));
    if (appended !== undefined) {
      log.forget(size);
      core.lastSaveBytes = appended.bytes;
      core.savedEdits = edits;
      return true;
    }
  }
  core.lastSaveBytes = write(snapshotOf(core, contents));
  log.forget(size);
  core.savedEdits = edits;
  return true;
}

/** The message of edits the exit flush could not save. */
function lostAtExit(core: Core, why: string): DepcacheError {
  return new DepcacheError(
    'EEXIT',
    `${core.name}: not saved at exit: ${why} (${core.edits - core.savedEdits} unsaved edits); await cache.save() before process.exit(), or let the script end by itself`,
  );
}

/** The exit flush through a store: its saveSync, or a report that the edits are lost. */
function flushStoreSync(cache: Cache, core: Core, store: CacheStore): boolean {
  const saveSync = store.saveSync;
  if (saveSync === undefined) {
    throw lostAtExit(core, 'its store has no saveSync, and nothing asynchronous runs once process.exit() is called or the process crashes');
  }
  const contents = cache.preProcessor ? preProcessed(cache, core) : core.map;
  if (!cache.saveOnBlank && contents.size === 0) return false;
  const edits = core.edits;
  const taken = core.log.take(mapSize.call(core.map));
  try {
    const plan = planStoreSave(core, store.capabilities.changes, taken, contents);
    saveSync.call(store, core.name, { mode: plan.mode, generation: core.generation, bound: plan.bound, batches: () => syncBatches(plan.source) });
  } catch (err) {
    core.log.restore(taken);
    if (err instanceof ExitSaveRefused) throw lostAtExit(core, err.message);
    throw err instanceof DepcacheError ? err : new CacheHookError(core.name, 'saver', err);
  }
  core.savedEdits = edits;
  return true;
}

/**
 * What a save through a store writes: everything (a whole save, replacing the saved state),
 * every entry as changes (contents that merge with what another process saved), or the changed
 * keys, each read as it was when the save began.
 */
function planStoreSave(
  core: Core,
  appliesChanges: boolean,
  taken: TakenChanges<unknown>,
  contents: Map<unknown, unknown>,
): { mode: 'whole' | 'changes'; source: ChangeSource; bound: number; readers: Preserver[] } {
  const own = contents === core.map;
  if (!own || !appliesChanges || !core.log.tracking || (taken.all && taken.reset)) {
    const live = snapshotOf(core, contents);
    return { mode: 'whole', source: { fill: (sets, _deletes, max) => live.fill(sets, max) }, bound: live.size, readers: own ? [live] : [] };
  }
  const candidates = taken.deletes.length === 0 ? taken.keys : taken.keys.concat(taken.deletes);
  if (taken.all) {
    const live = snapshotOf(core, core.map);
    return { mode: 'changes', source: new AllChangesSource(live, candidates), bound: mapSize.call(core.map) + taken.deletes.length, readers: [live] };
  }
  const changes = new ChangeSnapshot(core.map, candidates, core.generation, saveTransform(core, true));
  return { mode: 'changes', source: changes, bound: candidates.length, readers: [changes] };
}

/**
 * A save through a store, read in slices; on failure the changes are unsaved again. Nothing is
 * written when nothing changed, unless `always` (a user's saver is called on every save).
 */
async function saveThroughStore(core: Core, store: CacheStore, contents: Map<unknown, unknown>, always = false): Promise<void> {
  const log = core.log;
  const taken = log.take(mapSize.call(core.map));
  if (!always && contents === core.map && log.tracking && !taken.all && taken.keys.length === 0 && taken.deletes.length === 0) return;
  const plan = planStoreSave(core, store.capabilities.changes, taken, contents);
  for (const reader of plan.readers) core.openReader(reader);
  core.inflight = taken;
  try {
    await callHook(core.name, 'saver', () =>
      store.save(core.name, { mode: plan.mode, generation: core.generation, bound: plan.bound, batches: () => slicedBatches(plan.source) }),
    );
  } catch (err) {
    if (core.inflight === taken) log.restore(taken);
    throw err;
  } finally {
    if (core.inflight === taken) core.inflight = null;
    for (const reader of plan.readers) core.closeReader(reader);
  }
}

/** The loader of a cache with a store: its contents, the onCorrupt policy applied to a damaged state. */
export async function loadFromStore(cache: Cache, store: CacheStore, policy: 'quarantine' | 'throw'): Promise<StoredMap | undefined> {
  const name = cache.name;
  let contents;
  try {
    contents = await store.load(name);
  } catch (err) {
    // A file of a newer format is not damage: it is never moved aside.
    if (!(err instanceof CorruptCacheFileError) || err.code === 'EFORMAT_VERSION' || policy !== 'quarantine' || store.quarantine === undefined) throw err;
    const where = await store.quarantine(name);
    cache.manager.reportError(new CorruptCacheFileError(name, err.path, 'the saved state is damaged', { code: err.code as 'ECORRUPT', quarantinedTo: where, cause: err }));
    return undefined;
  }
  if (contents === undefined || contents === null) return undefined;
  return fromStored(contents, store.constructor?.name ?? 'store', name);
}

/** The store's contents, read synchronously; undefined: nothing saved. */
export function loadFromStoreSync(name: string, store: CacheStore): StoredMap | undefined {
  const contents = (store.loadSync as NonNullable<CacheStore['loadSync']>).call(store, name);
  return contents === undefined || contents === null ? undefined : fromStored(contents, store.constructor?.name ?? 'store', name);
}

/**
 * A save of a journaling store: appends the changed entries (values as they are now, before any
 * await), or every entry when all changed without replacing the saved state (new contents built
 * while another process saved: they merge). Writes the whole file when the saved state is to be
 * replaced (a clear, adopted contents) or there is none to append to.
 */
async function saveThroughJournal(core: Core, journal: JournalWriter, whole: SnapshotWriter): Promise<number> {
  const log = core.log;
  const size = mapSize.call(core.map);
  const taken = log.take(size);
  if (!taken.all && taken.keys.length === 0 && journal.hasBase()) return 0; // nothing changed
  core.inflight = taken;
  try {
    // Decided before any await, so a whole write still snapshots the map as the save began.
    if (taken.all && taken.reset) return await writeLiveSnapshot(core, whole);
    // Everything else merges with the saved state. The record is read part by part, as the map
    // was when the save began (copy-on-write), so no O(n) work happens here in one go; the whole
    // map is offered too when the store may write it instead (see saveChanges).
    const candidates = taken.deletes.length === 0 ? taken.keys : taken.keys.concat(taken.deletes);
    const bound = taken.all ? size + taken.deletes.length : candidates.length;
    const live = taken.all || journal.mayWriteWhole(bound, taken.all) ? snapshotOf(core, core.map) : undefined;
    const changes = taken.all ? undefined : new ChangeSnapshot(core.map, candidates, core.generation, saveTransform(core, true));
    const source = changes ?? new AllChangesSource(live as LiveSnapshot, candidates);
    if (live !== undefined) core.openReader(live);
    if (changes !== undefined) core.openReader(changes);
    let result: SaveResult | undefined;
    try {
      result = await callHook(core.name, 'saver', () => journal.saveChanges({ source, bound, all: taken.all, whole: live }));
    } finally {
      if (live !== undefined) core.closeReader(live);
      if (changes !== undefined) core.closeReader(changes);
    }
    if (result === undefined) {
      // The file vanished after this save began (a delete elsewhere): nothing to merge with.
      const written = await writeLiveSnapshot(core, (snapshot) => journal.writeIfNoBase(snapshot) as Promise<number>);
      if (written === undefined) throw new DepcacheError('EIO', `${core.name}: the saved file changed during the save; save again`);
      return written;
    }
    if (!result.whole) journal.afterAppend(result);
    return result.bytes;
  } catch (err) {
    if (core.inflight === taken) log.restore(taken);
    throw err;
  } finally {
    if (core.inflight === taken) core.inflight = null;
  }
}

/**
 * One save's journal record, with values as they are now: the changed keys, or with `all` every
 * entry, plus the keys deleted (those logged and not present now).
 */
function journalRecord(core: Core, keys: ReadonlySet<unknown>, deleted: readonly unknown[], all: boolean): JournalRecord {
  const map = core.map;
  const sets: unknown[] = [];
  const deletes: unknown[] = [];
  const transform = saveTransform(core, true); // reads this Map: slots, when expiring
  const put = (key: unknown, value: unknown) => {
    const saved = transform === null ? value : transform(key, value);
    if (saved === SKIP_ENTRY) deletes.push(key);
    else sets.push(key, saved);
  };
  if (all) {
    Map.prototype.forEach.call(map, (value: unknown, key: unknown) => put(key, value));
    for (const key of new Set([...keys, ...deleted])) if (!Map.prototype.has.call(map, key)) deletes.push(key);
  } else {
    for (const key of keys) {
      if (Map.prototype.has.call(map, key)) put(key, Map.prototype.get.call(map, key));
      else deletes.push(key);
    }
  }
  return { sets, deletes, generation: core.generation };
}

/**
 * Hands the changes to a change-saver (Redis), read part by part as they were when the save
 * began; on failure they are merged back for the retry.
 */
async function writeChanges(core: Core, write: ChangeSaver<unknown, unknown>[typeof CHANGE_SAVER]): Promise<unknown> {
  const log = core.log;
  const map = core.map;
  const taken = log.take(mapSize.call(map));
  const candidates = taken.deletes.length === 0 ? taken.keys : taken.keys.concat(taken.deletes);
  let keys: Set<unknown> | undefined;
  // A Set of a million logged keys is 100 ms in one go: built only by a store that asks for it.
  const changes = {
    all: taken.all,
    reset: taken.reset,
    get keys(): ReadonlySet<unknown> {
      keys ??= new Set(candidates);
      return keys;
    },
  };
  // Every entry with the keys deleted since (a reset too: the store keeps its deleted keys' tombstones), or the changed keys.
  let opened: Preserver;
  let source: ChangeSource;
  if (taken.all) {
    const live = snapshotOf(core, map);
    opened = live;
    source = new AllChangesSource(live, candidates);
  } else {
    const snapshot = new ChangeSnapshot(map, candidates, core.generation, saveTransform(core, true));
    opened = snapshot;
    source = snapshot;
  }
  core.openReader(opened);
  core.inflight = taken;
  try {
    return await callHook(core.name, 'saver', () => write(core.name, persistedView(core), changes, slicedParts(source)));
  } catch (err) {
    if (core.inflight === taken) log.restore(taken);
    throw err;
  } finally {
    if (core.inflight === taken) core.inflight = null;
    core.closeReader(opened);
  }
}

/** The live map, frozen at this moment: the snapshot keeps old values of entries changed later. */
async function writeLiveSnapshot(core: Core, writer: SnapshotWriter): Promise<number> {
  const snapshot = snapshotOf(core, core.map);
  core.openReader(snapshot);
  try {
    return await writer(snapshot);
  } finally {
    core.closeReader(snapshot);
  }
}

/** A copy as the pre-processor shapes it: it shapes what is saved, never memory. */
function preProcessed(cache: Cache, core: Core): Map<unknown, unknown> {
  return processWith(core.name, 'preProcessor', cache.preProcessor as Processor<unknown, unknown>, visibleCopy(core));
}

/** A plain copy of the entries, without expired ones (a user's saver gets values only). */
export function visibleCopy(core: Core): Map<unknown, unknown> {
  const copy = new Map<unknown, unknown>();
  if (core.book === null) fillMap(copy, core.map, core.name, 'cache');
  else visibleEntries(core, copy);
  return copy;
}

/** Runs a processor hook; its output, checked (undefined keeps the input). */
export function processWith(name: string, hook: HookName, processor: Processor<unknown, unknown>, input: Map<unknown, unknown>): Map<unknown, unknown> {
  let out: unknown;
  try {
    out = processor(input);
  } catch (err) {
    throw new CacheHookError(name, hook, err);
  }
  return out === undefined || out === input ? input : toMap(out, name, hook);
}

/** Runs a hook; a failure that is not one of ours is wrapped in a CacheHookError naming the cache and hook. */
export async function callHook<T>(name: string, hook: HookName, fn: () => MaybePromise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DepcacheError) throw err;
    throw new CacheHookError(name, hook, err);
  }
}

/** Whether the exit flush must await this saver (a custom one, or a store without saveSync, or a change-saver). */
export function savesAsyncAtExit(cache: Cache, core: Core, writers: () => SaveWriters): boolean {
  const saver = cache.saver as object | null;
  if (saver === null) return false;
  if (saver === core.storeSaver) return (core.store as CacheStore).saveSync === undefined;
  return CHANGE_SAVER in saver || writers().sync === undefined;
}

/** Whether a ttl given to this cache would survive its saver (TypeError naming it otherwise). */
export function assertSaverKeepsExpiry(cache: Cache, core: Core, writers: () => SaveWriters, where: string): void {
  const saver = cache.saver as object | null;
  if (saver !== null && saver === core.storeSaver) {
    if ((core.store as CacheStore).capabilities.expiry) return;
    throw new TypeError(`${core.name}: ${where}: its store cannot save expiry times (capabilities.expiry is false)`);
  }
  if (saver !== null && !(CHANGE_SAVER in saver) && writers().sync === undefined) {
    throw new TypeError(`${core.name}: ${where}: a custom saver is given values only, so it cannot save expiry times`);
  }
}
