/**
 * A reversible JSON encoding of what v8.serialize keeps: plain JSON stays as it is, everything
 * else becomes a one-key object tagged with `$`: `{"$map": [[k, v]]}`, `{"$set": [...]}`,
 * `{"$date": "2024-..."}`, `{"$bigint": "12"}`, `{"$bytes": "base64", "type": "Uint8Array"}`,
 * `{"$number": "NaN"}`, `{"$undefined": true}`, `{"$regexp": "a+", "flags": "g"}`. A plain object
 * with a key starting with `$` is wrapped as `{"$object": {...}}` so it cannot be mistaken.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const TYPED: Record<string, new (buffer: ArrayBufferLike, offset: number, length: number) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

export function toJsonSafe(value: unknown): JsonValue {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0) ? value : { $number: String(Object.is(value, -0) ? '-0' : value) };
    case 'bigint':
      return { $bigint: value.toString() };
    case 'undefined':
      return { $undefined: true };
    case 'object':
      break;
    default:
      throw new TypeError(`cannot encode a ${typeof value} as JSON`);
  }
  if (value === null) return null;
  if (Array.isArray(value)) return value.map(toJsonSafe);
  if (value instanceof Date) return { $date: Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString() };
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [toJsonSafe(k), toJsonSafe(v)]) };
  if (value instanceof Set) return { $set: [...value].map(toJsonSafe) };
  if (value instanceof RegExp) return { $regexp: value.source, flags: value.flags };
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return { $bytes: bytes.toString('base64'), type: value.constructor.name };
  }
  const out: { [key: string]: JsonValue } = {};
  let tagged = false;
  for (const key of Object.keys(value)) {
    if (key.startsWith('$')) tagged = true;
    out[key] = toJsonSafe((value as Record<string, unknown>)[key]);
  }
  return tagged ? { $object: out } : out;
}

export function fromJsonSafe(json: unknown): unknown {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map(fromJsonSafe);
  const o = json as Record<string, unknown>;
  const keys = Object.keys(o);
  const tag = keys.find((k) => k.startsWith('$'));
  if (tag !== undefined) {
    switch (tag) {
      case '$map':
        return new Map((o.$map as Array<[unknown, unknown]>).map(([k, v]) => [fromJsonSafe(k), fromJsonSafe(v)]));
      case '$set':
        return new Set((o.$set as unknown[]).map(fromJsonSafe));
      case '$date':
        return new Date(o.$date as string);
      case '$bigint':
        return BigInt(o.$bigint as string);
      case '$number':
        return Number(o.$number as string);
      case '$undefined':
        return undefined;
      case '$regexp':
        return new RegExp(o.$regexp as string, (o.flags as string | undefined) ?? '');
      case '$bytes': {
        const bytes = Buffer.from(o.$bytes as string, 'base64');
        const Typed = TYPED[o.type as string] ?? Uint8Array;
        const copy = new Uint8Array(bytes).buffer;
        const width = (Typed as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
        return new Typed(copy, 0, bytes.length / width);
      }
      case '$object':
        return decodeObject(o.$object as Record<string, unknown>);
      default:
        break; // an unknown tag: a plain object after all
    }
  }
  return decodeObject(o);
}

function decodeObject(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(o)) out[key] = fromJsonSafe(o[key]);
  return out;
}
