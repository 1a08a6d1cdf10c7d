import * as v8 from 'node:v8';

// How entries are stored in a cache's hash.
// Field names: v8-serialized keys start with 0xFF; string keys are stored as 0x01 + UTF-8 (a
// deserializer per key costs more than the whole HSCAN); 0x00 starts the cache's own record.
export const META_FIELD = Buffer.from('\u0000meta', 'latin1');
/** The hash's epoch: which saved state this is (new after a reset, a delete or a recovery). */
export const EPOCH_FIELD = Buffer.from('\u0000epoch', 'latin1');
/** The hash's version: bumped by every change of its entries (see scripts.ts). */
export const VERSION_FIELD = Buffer.from('\u0000ver', 'latin1');
const STRING_KEY = 0x01;

export function encodeKey(key: unknown): Buffer {
  return typeof key === 'string' ? Buffer.from(`\u0001${key}`, 'utf8') : v8.serialize(key);
}

export function decodeKey(field: Buffer): unknown {
  return field[0] === STRING_KEY ? field.toString('utf8', 1) : v8.deserialize(field);
}

// Values: v8.serialize (0xFF...), except plain JSON values, stored as 0x01 + JSON text: a v8
// deserializer per entry costs ~6 µs, JSON.parse a fraction of that, and for these values both
// give back exactly the same thing.
const JSON_VALUE = 0x01;

export function encodeValue(value: unknown): Buffer {
  return isPlainJson(value, 0) ? Buffer.from(`\u0001${JSON.stringify(value)}`, 'utf8') : v8.serialize(value);
}

export function decodeValue(buf: Buffer): unknown {
  return buf[0] === JSON_VALUE ? JSON.parse(buf.toString('utf8', 1)) : v8.deserialize(buf);
}

/** The cache's own fields, as a page of HSCAN found them. */
export interface OwnFields {
  meta: boolean;
  epoch: string | undefined;
}

/**
 * Appends the entries of one HSCAN page (`[field, value, ...]`) to `out` as `k0, v0, ...`,
 * noting the cache's own fields (those starting with 0x00: its record, its epoch, tombstones)
 * in `own`. JSON values are parsed together, as one array: a JSON.parse call per value costs
 * 35% more than one call for the whole page.
 * @throws what decoding a damaged entry throws
 */
export function decodePage(flat: Buffer[], out: unknown[], own: OwnFields): void {
  const jsonSlots: number[] = [];
  const jsonValues: Buffer[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const field = flat[i] as Buffer;
    const value = flat[i + 1] as Buffer;
    if (field[0] === 0) {
      if (field.equals(META_FIELD)) own.meta = true;
      else if (field.equals(EPOCH_FIELD)) own.epoch = value.toString('latin1');
      continue;
    }
    out.push(decodeKey(field));
    if (value[0] === JSON_VALUE) {
      jsonSlots.push(out.length);
      jsonValues.push(value);
      out.push(undefined);
    } else out.push(decodeValue(value));
  }
  if (jsonValues.length > 0) {
    const parsed = parseJsonValues(jsonValues);
    for (let i = 0; i < jsonSlots.length; i++) out[jsonSlots[i] as number] = parsed[i];
  }
}

/** The JSON values (each tagged 0x01) parsed as one array `[v0,v1,...]`, one result per value. */
function parseJsonValues(values: Buffer[]): unknown[] {
  let bytes = 1;
  for (const value of values) bytes += value.length; // the tag byte's place takes the comma
  const joined = Buffer.allocUnsafe(bytes);
  let at = 0;
  let separator = 0x5b; // '[' before the first value, ',' before the others
  for (const value of values) {
    joined[at++] = separator;
    separator = 0x2c;
    at += value.copy(joined, at, 1);
  }
  joined[at++] = 0x5d; // ']'
  let parsed: unknown;
  try {
    parsed = JSON.parse(joined.toString('utf8', 0, at));
  } catch {
    parsed = undefined;
  }
  // Every value was written by JSON.stringify, so the array has exactly one element per value.
  // A damaged value breaks the syntax or the count (only values crafted to cancel each other out
  // would not; a foreign writer can store wrong but well-formed values anyway): then decode one
  // by one, so the culprit throws.
  if (!Array.isArray(parsed) || parsed.length !== values.length) return values.map(decodeValue);
  return parsed;
}

/** True when JSON round-trips `value` exactly as v8 would: no -0, NaN, undefined, holes, Dates, Maps... */
function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object': {
      if (value === null) return true;
      if (depth > 32) return false; // deep or cyclic: v8 handles it
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!(i in value) || !isPlainJson(value[i], depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key of Object.keys(value)) {
        if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

