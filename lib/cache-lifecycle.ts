/*
 * The steps of a cache's lifecycle operations, run in its queue by the cache class: load
 * (loader → validator → postProcessor), build (builder → postProcessor), save (the write is
 * cache-saves.ts's), delete of the saved state, and the replacement of the entries in place that
 * loads and builds end with. Cold paths: clarity first.
 */
import type { AnyCacheMap, Processor } from './cache';
import { type CacheCore, newGeneration } from './cache-core';
import { type SaveWriters, callHook, processWith, writeSave } from './cache-saves';
import { fillMap, toMap } from './contents';
import { CacheHookError } from './errors';
import { expiryAfterReplace, trimToMax } from './expiry/cache-expiry';
import { DecodedEntries } from './store/decoded-entries';
import { mapSize } from './store/snapshot';
import { StoredMap } from './store/store-save';

type Core = CacheCore<unknown>;
type Cache = AnyCacheMap;
type Loaded = Map<unknown, unknown> | DecodedEntries;

/** Loads; resolves true when contents were loaded (otherwise the cache has none). */
export async function loadNow(cache: Cache, core: Core): Promise<boolean> {
  const loader = cache.loader;
  const raw: unknown = loader ? await callHook(core.name, 'loader', () => loader(core.name)) : undefined;
  const loaded = toLoaded(cache, raw);
  if (loaded === null) return settleLoad(cache, core, false, 'missing');
  const validator = cache.validator;
  if (validator && !(await isValid(validator, loaded as Map<unknown, unknown>))) return settleLoad(cache, core, false, 'invalid');
  return commitLoaded(cache, core, loaded, savedGeneration(raw));
}

/**
 * The synchronous load pipeline, for loaders that already hold the data (loadSync).
 * @throws {TypeError} when the validator is asynchronous
 */
export function applyLoadedSync(cache: Cache, core: Core, raw: unknown): boolean {
  const loaded = toLoaded(cache, raw);
  if (loaded === null) return settleLoad(cache, core, false, 'missing');
  const validator = cache.validator;
  if (validator) {
    let valid: unknown;
    try {
      valid = validator(loaded as Map<unknown, unknown>);
    } catch {
      valid = false;
    }
    if (valid instanceof Promise) {
      valid.catch(() => undefined);
      throw new TypeError(`${core.name}: a synchronous load needs a synchronous validator`);
    }
    if (valid !== true) return settleLoad(cache, core, false, 'invalid');
  }
  return commitLoaded(cache, core, loaded, savedGeneration(raw));
}

/** Runs builder → postProcessor; the contents built (the cache is not changed yet). */
export async function produceBuilt(cache: Cache): Promise<Map<unknown, unknown>> {
  const builder = cache.builder;
  const raw: unknown = builder ? await callHook(cache.name, 'builder', () => builder(cache.name)) : new Map();
  return postProcessed(cache, toMap(raw, cache.name, 'builder'));
}

/**
 * Builds synchronously (LazyCache's first access): builder → postProcessor → replace. Does not
 * save. @throws {TypeError} when the builder returns a Promise
 */
export function buildSync(cache: Cache, core: Core): void {
  const builder = cache.builder;
  let raw: unknown = new Map();
  if (builder) {
    try {
      raw = builder(core.name);
    } catch (err) {
      throw new CacheHookError(core.name, 'builder', err);
    }
    if (raw instanceof Promise) {
      raw.catch(() => undefined);
      throw new TypeError(`${core.name}: a lazy build needs a synchronous builder`);
    }
  }
  settleBuilt(cache, core, postProcessed(cache, toMap(raw, core.name, 'builder')));
}

/** Built contents in place, then saved. `replaces`: they replace the saved state (false: they merge with it). */
export async function installBuilt(cache: Cache, core: Core, contents: Map<unknown, unknown>, replaces: boolean, writers: () => SaveWriters): Promise<void> {
  if (core.log.tracking) core.log.reset ||= replaces;
  settleBuilt(cache, core, contents);
  await saveNow(cache, core, writers);
}

/**
 * Writes a save and keeps its figures; resolves true when the saver ran. The writers are asked
 * for now, not before: a build's listeners may have replaced the saver.
 */
export async function saveNow(cache: Cache, core: Core, writers: () => SaveWriters): Promise<boolean> {
  const started = performance.now();
  const edits = core.edits;
  const written = await writeSave(cache, core, writers());
  if (written === null) return false;
  core.savedEdits = Math.max(core.savedEdits, edits);
  core.saves++;
  core.lastSaveAt = Date.now();
  core.lastSaveMs = performance.now() - started;
  core.lastSaveBytes = written.bytes;
  core.callbacks.stateSettled('save');
  cache.manager.notify('save', { cache: core.name, durationMs: core.lastSaveMs, bytes: written.bytes });
  cache.manager.announce('save', core.name, false, written.detail); // after the data is there, so followers see it
  return true;
}

/** Runs the deleter; memory stays, and no longer counts as edits of a saved state that is gone. */
export async function deleteNow(cache: Cache, core: Core): Promise<void> {
  const deleter = cache.deleter;
  if (deleter) await callHook(core.name, 'deleter', () => deleter(core.name));
  core.savedEdits = core.edits;
  core.log.markAll(true);
  core.callbacks.stateSettled('delete');
  cache.manager.notify('delete', { cache: core.name });
}

/** Replaces the entries in place (a load, a build, adopted contents); `fresh` ones get the cache's lifetime. */
export function replaceWith(core: Core, contents: Loaded, fresh = false): void {
  core.log.markAll(false); // a load settles this back to "nothing changed"
  // Only adoptContents() can get here while a save reads the map; keep what it must write.
  const snapshot = core.snapshot;
  if (snapshot !== null) {
    snapshot.preserveAll();
    for (const [key] of contents) snapshot.preserve(key);
  }
  Map.prototype.clear.call(core.map);
  fillMap(core.map, contents, core.name, 'loader');
  core.setHasContents(true);
  expiryAfterReplace(core, fresh);
}

/** New contents built: in place, a new generation, one edit (unsaved until saved). */
function settleBuilt(cache: Cache, core: Core, contents: Map<unknown, unknown>): void {
  replaceWith(core, contents, true);
  core.setGeneration(newGeneration());
  trimToMax(core);
  core.edits++;
  core.builds++;
  core.callbacks.stateSettled('build');
  cache.manager.notify('build', { cache: core.name });
}

function postProcessed(cache: Cache, contents: Map<unknown, unknown>): Map<unknown, unknown> {
  const postProcessor = cache.postProcessor as Processor<unknown, unknown> | null;
  return postProcessor ? processWith(cache.name, 'postProcessor', postProcessor, contents) : contents;
}

/** Decoded file entries stay as they are when nothing needs a Map; null means nothing saved. */
function toLoaded(cache: Cache, raw: unknown): Loaded | null {
  if (raw === undefined || raw === null) return null;
  if (raw instanceof DecodedEntries && !cache.validator && !cache.postProcessor) return raw;
  return toMap(raw, cache.name, 'loader');
}

function commitLoaded(cache: Cache, core: Core, loaded: Loaded, generation: string): boolean {
  replaceWith(core, loaded instanceof Map ? postProcessed(cache, loaded) : loaded);
  core.setGeneration(generation);
  return settleLoad(cache, core, true);
}

function settleLoad(cache: Cache, core: Core, loaded: boolean, reason?: 'missing' | 'invalid'): boolean {
  core.foundNothingSaved = reason === 'missing';
  if (!loaded) {
    Map.prototype.clear.call(core.map);
    core.book?.clear();
    core.setHasContents(false);
  }
  core.savedEdits = core.edits;
  core.log.settleLoad(loaded, mapSize.call(core.map)); // loaded: memory equals the store
  core.loads++;
  if (loaded) trimToMax(core); // after the reset: evictions are edits to save
  core.callbacks.stateSettled('load');
  cache.manager.notify('load', { cache: core.name, loaded, reason });
  return loaded;
}

async function isValid(validator: (contents: Map<unknown, unknown>) => unknown, contents: Map<unknown, unknown>): Promise<boolean> {
  try {
    return (await validator(contents)) === true;
  } catch {
    return false; // a throwing validator means "invalid", as in CacheMan
  }
}

/** The generation saved with what a loader returned; a new one when the store keeps none. */
function savedGeneration(raw: unknown): string {
  if (raw instanceof StoredMap && raw.generation !== undefined) return raw.generation;
  if (raw instanceof DecodedEntries) {
    const { generation, savedAt } = raw.meta;
    if (typeof generation === 'string') return generation;
    // A file from before generations were saved: its save time names its contents well enough.
    if (savedAt > 0) return `saved-at:${savedAt}`;
  }
  return newGeneration();
}
