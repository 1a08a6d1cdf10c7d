/**
 * Why arguments cannot be keyed, for the error that asks for a `key` option instead. Never a
 * shared key: an argument whose state the key cannot see must not be mistaken for another.
 */
export class Unkeyable {
  constructor(
    readonly reason: string,
    /** The argument is an instance that shows no state (rather than one that cannot be encoded). */
    readonly invisible = false,
  ) {}
}

// Deeper than this is either a cycle or a structure that recursion would overflow on; which
// one is told apart only then, so the common case pays for no `seen` set.
export const MAX_KEY_DEPTH = 1000;

/**
 * Encodes call arguments as a string that tells types apart: `1`, `'1'`, `1n`, `[1]`, `{a: 1}`
 * and `new Map([['a', 1]])` all differ, while equal plain objects with keys in another order
 * are the same. Built-ins whose state lives in internal slots are keyed by that state (a URL by
 * its href, an Error by name and message, a boxed number by its value, ...). Returns an
 * {@link Unkeyable} for what cannot be keyed: functions, symbols, promises, weak collections,
 * cycles, structures nested deeper than {@link MAX_KEY_DEPTH}, and class instances that show no
 * state (no own enumerable property: their state is private, or in slots we cannot read).
 */
export function encodeArgs(args: readonly unknown[]): string | Unkeyable {
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

/** Thrown inside the encoder, caught once at the top: cheaper than checking every return. */
class Stop {
  constructor(readonly unkeyable: Unkeyable) {}
}

function encodeSlow(args: readonly unknown[]): string | Unkeyable {
  let out = '';
  try {
    for (let i = 0; i < args.length; i++) out += (i === 0 ? '' : ',') + encodeValue(args[i], 0);
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    if (err.unkeyable.reason !== DEEP) return err.unkeyable;
    return new Unkeyable(hasCycle(args) ? 'they hold a cycle' : `they are nested deeper than ${MAX_KEY_DEPTH} levels`);
  }
  return out;
}

const DEEP = 'deep';

// Hot for object arguments: appends to one string, sorts keys only when they are out of order,
// and allocates nothing else per level.
function encodeValue(value: unknown, depth: number): string {
  const primitive = encodePrimitive(value);
  if (primitive !== undefined) return primitive;
  if (typeof value !== 'object' || value === null) {
    throw new Stop(new Unkeyable(`an argument is a ${typeof value}`));
  }
  if (depth >= MAX_KEY_DEPTH) throw new Stop(new Unkeyable(DEEP));
  const next = depth + 1;
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + encodeValue(value[i], next);
    return `${out}]`;
  }
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto === Object.prototype || proto === null) return encodeFields(value, '{', next);
  return encodeBuiltIn(value, proto, next);
}

/** Own enumerable keys, sorted (equal objects with keys in another order get one key). */
function encodeFields(value: object, open: string, depth: number): string {
  const keys = Object.keys(value);
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) {
      keys.sort();
      break;
    }
  }
  let out = open;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    out += `${i === 0 ? '' : ','}'${key.length}:${key}:${encodeValue((value as Record<string, unknown>)[key], depth)}`;
  }
  return `${out}}`;
}

function encodeBuiltIn(value: object, proto: object, depth: number): string {
  if (value instanceof Date) return `D(${Number.isNaN(value.getTime()) ? 'NaN' : value.toISOString()})`;
  if (value instanceof RegExp) return `R(${String(value)})`;
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return `B(${value.constructor.name}:${bytes.toString('base64')})`;
  }
  if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer)) {
    return `AB(${value.constructor.name}:${Buffer.from(value).toString('base64')})`;
  }
  if (value instanceof Map) {
    let out = 'M{';
    let first = true;
    for (const [k, v] of value) {
      out += `${first ? '' : ','}${encodeValue(k, depth)}=>${encodeValue(v, depth)}`;
      first = false;
    }
    return `${out}}`;
  }
  if (value instanceof Set) {
    let out = 'S{';
    let first = true;
    for (const item of value) {
      out += (first ? '' : ',') + encodeValue(item, depth);
      first = false;
    }
    return `${out}}`;
  }
  if (value instanceof URL) return `URL(${value.href})`;
  if (value instanceof URLSearchParams) return `USP(${value.toString()})`;
  if (value instanceof Error) {
    // name and message are the state people branch on; own fields (code, ...) come along.
    return `E(${encodePrimitive(value.name)}:${encodePrimitive(value.message)})${encodeFields(value, '{', depth)}`;
  }
  if (value instanceof Number || value instanceof String || value instanceof Boolean || value instanceof BigInt) {
    return `O(${value.constructor.name}:${encodePrimitive(value.valueOf())})`;
  }
  if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) {
    throw new Stop(new Unkeyable(`an argument is a ${value.constructor.name}, whose state cannot be read`));
  }
  if (value instanceof Symbol) throw new Stop(new Unkeyable('an argument is a boxed symbol'));
  // A class instance: its class and own enumerable properties. One that shows none keeps its
  // state where the key cannot see it (#private fields, internal slots): refuse it.
  const tag = (proto as { constructor?: { name?: string } }).constructor?.name ?? '?';
  if (Object.keys(value).length === 0) {
    throw new Stop(new Unkeyable(`an argument is a ${tag} instance with no own enumerable property, so its state is invisible to the key`, true));
  }
  return encodeFields(value, `C(${tag}){`, depth);
}

/**
 * `this` of a memoized method: keyed as an argument, except that an instance showing no state is
 * keyed by its class alone (a stateless service object is the common case). A method whose
 * results depend on `#private` state needs the `key` option.
 */
export function encodeThis(self: unknown): string | Unkeyable {
  const key = encodeArgs([self]);
  if (typeof key === 'string' || !key.invisible || typeof self !== 'object' || self === null) return key;
  const proto = Object.getPrototypeOf(self) as { constructor?: { name?: string } };
  return `C(${proto.constructor?.name ?? '?'}){}`;
}

/** Whether the arguments hold a cycle (run only after the depth limit was hit). */
function hasCycle(args: readonly unknown[]): boolean {
  const onPath = new Set<object>();
  const stack: Array<{ value: object; children: Iterator<unknown> }> = [];
  const children = (v: object): Iterator<unknown> => {
    if (v instanceof Map) return [...v].flat()[Symbol.iterator]();
    if (v instanceof Set || Array.isArray(v)) return [...(v as Iterable<unknown>)][Symbol.iterator]();
    return Object.values(v)[Symbol.iterator]();
  };
  for (const root of args) {
    if (typeof root !== 'object' || root === null) continue;
    onPath.add(root);
    stack.push({ value: root, children: children(root) });
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { value: object; children: Iterator<unknown> };
      const step = top.children.next();
      if (step.done) {
        onPath.delete(top.value);
        stack.pop();
        continue;
      }
      const child = step.value;
      if (typeof child !== 'object' || child === null) continue;
      if (onPath.has(child)) return true;
      onPath.add(child);
      stack.push({ value: child, children: children(child) });
    }
  }
  return false;
}
