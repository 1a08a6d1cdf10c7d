/**
 * Encodes call arguments as a string that tells types apart: `1`, `'1'`, `1n`, `[1]`, `{a: 1}`
 * and `new Map([['a', 1]])` all differ, while equal plain objects with keys in another order
 * are the same. Returns undefined for what cannot be keyed: functions, symbols, promises,
 * weak collections, and cyclic structures.
 */
export function encodeArgs(args: readonly unknown[]): string | undefined {
  // Fast path: primitive arguments, the common case of a memoized hit, built in one string.
  let out = '';
  for (let i = 0; i < args.length; i++) {
    const part = encodePrimitive(args[i]);
    if (part === undefined) return encodeSlow(args);
    out += i === 0 ? part : `,${part}`;
  }
  return out;
}

function encodePrimitive(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      // Length-prefixed, so no escaping is needed and no string can pass for another, or for a number.
      return `'${value.length}:${value}`;
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'boolean':
      return value ? 'T' : 'F';
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'U';
    default:
      return value === null ? 'N' : undefined;
  }
}

function encodeSlow(args: readonly unknown[]): string | undefined {
  const seen = new Set<object>();
  const parts: string[] = [];
  for (const arg of args) {
    const part = encodeValue(arg, seen);
    if (part === undefined) return undefined;
    parts.push(part);
  }
  return parts.join(',');
}

function encodeValue(value: unknown, seen: Set<object>): string | undefined {
  const primitive = encodePrimitive(value);
  if (primitive !== undefined) return primitive;
  if (typeof value !== 'object' || value === null) return undefined; // function, symbol
  if (seen.has(value)) return undefined; // a cycle
  if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet) return undefined;
  seen.add(value);
  try {
    if (value instanceof Date) return `D(${Number.isNaN(value.getTime()) ? 'NaN' : value.toISOString()})`;
    if (value instanceof RegExp) return `R(${String(value)})`;
    if (ArrayBuffer.isView(value)) {
      const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      return `B(${value.constructor.name}:${bytes.toString('base64')})`;
    }
    if (Array.isArray(value)) return encodeList('[', value, ']', seen);
    if (value instanceof Map) {
      const parts: string[] = [];
      for (const [k, v] of value) {
        const ek = encodeValue(k, seen);
        const ev = encodeValue(v, seen);
        if (ek === undefined || ev === undefined) return undefined;
        parts.push(`${ek}=>${ev}`);
      }
      return `M{${parts.join(',')}}`;
    }
    if (value instanceof Set) return encodeList('S{', [...value], '}', seen);
    // Plain objects and class instances: own enumerable keys, sorted, tagged with the class.
    const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
    const tag = proto === null || proto === Object.prototype ? '' : (proto.constructor?.name ?? '?');
    const parts: string[] = [];
    for (const key of Object.keys(value).sort()) {
      const ev = encodeValue((value as Record<string, unknown>)[key], seen);
      if (ev === undefined) return undefined;
      parts.push(`${encodePrimitive(key)}:${ev}`);
    }
    return tag === '' ? `{${parts.join(',')}}` : `C(${tag}){${parts.join(',')}}`;
  } finally {
    seen.delete(value);
  }
}

function encodeList(open: string, items: readonly unknown[], close: string, seen: Set<object>): string | undefined {
  const parts: string[] = [];
  for (const item of items) {
    const part = encodeValue(item, seen);
    if (part === undefined) return undefined;
    parts.push(part);
  }
  return `${open}${parts.join(',')}${close}`;
}
