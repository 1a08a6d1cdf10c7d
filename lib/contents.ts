import { slottedMaps } from './expiry/slotted';
import { mapSize } from './store/snapshot';
import { DecodedEntries } from './store/decoded-entries';

/**
 * What hooks that produce contents (loader, builder, processors) may return: a `Map`, an iterable
 * of `[key, value]` pairs, or a plain object (its own enumerable string keys).
 */
export type Contents<K, V> = ReadonlyMap<K, V> | Iterable<readonly [K, V]> | Record<string, V>;

/**
 * Turns hook output into a fresh `Map` the caller may own and mutate.
 * Throws a TypeError naming the cache and the hook when the shape is none of {@link Contents}.
 */
export function toMap<K, V>(contents: unknown, cacheName: string, source: string): Map<K, V> {
  const map = new Map<K, V>();
  fillMap(map, contents, cacheName, source);
  return map;
}

/** Adds the entries of `contents` to `map` with Map's own `set` (no subclass bookkeeping). */
export function fillMap(
  map: Map<unknown, unknown>,
  contents: unknown,
  cacheName: string,
  source: string,
): void {
  const set = Map.prototype.set;
  if (contents instanceof DecodedEntries) {
    contents.fillInto(map);
    return;
  }
  if (contents instanceof Map) {
    if (slottedMaps.has(contents)) {
      // A cache that expires entries: its Map holds slots; its own iterator gives the live values.
      if (mapSize.call(contents) > 0) for (const [k, v] of contents.entries()) set.call(map, k, v);
      return;
    }
    // Map.prototype.forEach, not contents.forEach: a CacheMap without contents would throw.
    Map.prototype.forEach.call(contents, (v: unknown, k: unknown) => set.call(map, k, v));
    return;
  }
  if (typeof contents === 'object' && contents !== null) {
    if (Symbol.iterator in contents) {
      for (const pair of contents as Iterable<unknown>) {
        if (!Array.isArray(pair) || pair.length < 2) {
          throw new TypeError(
            `${cacheName}: the ${source} returned an iterable whose items are not [key, value] pairs`,
          );
        }
        set.call(map, pair[0], pair[1]);
      }
      return;
    }
    if (isPlainObject(contents)) {
      for (const key of Object.keys(contents)) {
        set.call(map, key, (contents as Record<string, unknown>)[key]);
      }
      return;
    }
  }
  throw new TypeError(
    `${cacheName}: the ${source} returned ${describe(contents)}; expected a Map, an iterable of [key, value] pairs or a plain object`,
  );
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  return `a ${typeof value}`;
}
