/*
 * The core's side of the public store boundary (cache-store.ts): a save's batches read from a
 * copy-on-write source in slices, and loaded contents turned into what the cache fills itself
 * with. Cold paths: clarity first.
 */
import { EXPIRES_FIELD, isExpiryEnvelope, wrapExpiring } from '../expiry/envelope';
import type { StoreBatch, StoredContents, StoredEntry } from './cache-store';

/** Where a save's entries come from: a snapshot of every entry, or of the changed keys. */
export interface ChangeSource {
  /** Appends up to `max` changes (`sets` as k0, v0, k1, v1, ...; `deletes` as keys); returns how many. */
  fill(sets: unknown[], deletes: unknown[], max: number): number;
}

// Entries per batch, and how long the core reads before it yields to the event loop.
const BATCH_ENTRIES = 1024;
const SLICE_MS = 5;

function toEntry(key: unknown, saved: unknown): StoredEntry {
  if (typeof saved === 'object' && saved !== null && isExpiryEnvelope(saved)) {
    return { key, value: saved.value, expiresAt: saved[EXPIRES_FIELD] };
  }
  return { key, value: saved };
}

/** One part of `source` as the core reads it (flat sets k0, v0, ...; deleted keys); undefined once it is exhausted. */
function nextPart(source: ChangeSource): { sets: unknown[]; deletes: unknown[] } | undefined {
  const sets: unknown[] = [];
  const deletes: unknown[] = [];
  return source.fill(sets, deletes, BATCH_ENTRIES) === 0 ? undefined : { sets, deletes };
}

/** A part as a store's batch: each set an entry with its expiry time. */
function toBatch(part: { sets: unknown[]; deletes: unknown[] }): StoreBatch {
  const flat = part.sets;
  const sets: StoredEntry[] = [];
  for (let i = 0; i < flat.length; i += 2) sets.push(toEntry(flat[i], flat[i + 1]));
  return { sets, deletes: part.deletes };
}

/**
 * The parts of a save, flat, yielding to the event loop whenever a slice's time is spent (what
 * the consumer does with a part counts toward the slice).
 */
export async function* slicedParts(source: ChangeSource): AsyncGenerator<{ sets: unknown[]; deletes: unknown[] }> {
  let sliceStart = performance.now();
  for (;;) {
    if (performance.now() - sliceStart >= SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    const part = nextPart(source);
    if (part === undefined) return;
    yield part;
  }
}

/** The batches of a save, read in slices (see {@link slicedParts}). */
export async function* slicedBatches(source: ChangeSource): AsyncGenerator<StoreBatch> {
  for await (const part of slicedParts(source)) yield toBatch(part);
}

/** The same, read at once (the exit flush). */
export function* syncBatches(source: ChangeSource): Generator<StoreBatch> {
  for (let part = nextPart(source); part !== undefined; part = nextPart(source)) yield toBatch(part);
}

/** Loaded contents as the cache fills itself with them, carrying the generation they were saved with. */
export class StoredMap extends Map<unknown, unknown> {
  constructor(readonly generation: string | undefined) {
    super();
  }
}

/** What a store loaded, as a map of saved values (with their expiry times, wrapped as the other stores save them). */
export function fromStored(contents: StoredContents, storeName: string, cacheName: string): StoredMap {
  if (typeof contents !== 'object' || contents === null || !(Symbol.iterator in Object(contents.entries))) {
    throw new TypeError(`${cacheName}: ${storeName}.load(): expected { entries, generation? }, got ${typeof contents}`);
  }
  const generation = typeof contents.generation === 'string' ? contents.generation : undefined;
  const map = new StoredMap(generation);
  for (const entry of contents.entries) {
    const at = entry.expiresAt;
    map.set(entry.key, at === undefined || at === Number.POSITIVE_INFINITY ? entry.value : wrapExpiring(entry.value, at));
  }
  return map;
}
