import { inspect } from 'node:util';

/*
 * memoize's results cache as a person reads it. Its keys are `name#fingerprint` + NUL + the
 * arguments as lib/memoize/arg-key.ts encodes them (`'2:kg` for the string 'kg'), and its values
 * `[result, lastUsed, 1 when from a Promise, generations?]` (see lib/memoize/memoize.ts). Shown
 * raw, that is a NUL in every key and length-prefixed strings; here it is `describe(1, 'kg')`.
 * Decoding is for display only: anything this parser does not follow is shown as encoded.
 */

const KEY = /^([^\u0000]*)#([0-9a-f]{16})\u0000([^]*)$/;

/** One memoized call, readable. */
export interface MemoizedCall {
  /** The function's name (its `name` option, else `fn.name`). */
  readonly fn: string;
  /** The arguments as source-like text: `1, {scale: 'kg'}`. */
  readonly args: string;
  readonly result: unknown;
  /** When the result was last used (ms since the epoch). */
  readonly lastUsed: number;
  /** The result came from a Promise (an async function). */
  readonly async: boolean;
}

/** The call an entry of memoize's cache stands for; undefined when it is no such entry. */
export function memoizedCall(key: unknown, value: unknown): MemoizedCall | undefined {
  if (typeof key !== 'string' || !Array.isArray(value) || value.length < 3 || value.length > 4) return undefined;
  const [result, lastUsed, kind] = value as [unknown, unknown, unknown];
  if (typeof lastUsed !== 'number' || (kind !== 0 && kind !== 1)) return undefined;
  const match = KEY.exec(key);
  if (!match) return undefined;
  return { fn: match[1] as string, args: readableArgs(match[3] as string), result, lastUsed, async: kind === 1 };
}

/** Whether every entry is a memoized call: then the cache is shown and exported as calls. */
export function isMemoizeCache(entries: ReadonlyArray<readonly [unknown, unknown]>): boolean {
  return entries.length > 0 && entries.every(([k, v]) => memoizedCall(k, v) !== undefined);
}

/** `describe(1, {scale: 'kg'})`, or `describe[this: Prices {}](1)` for a method. */
export function callText(call: MemoizedCall): string {
  return `${call.fn}(${call.args})`;
}

/** The encoded arguments as source-like text; the encoding itself when it cannot be followed. */
export function readableArgs(encoded: string): string {
  try {
    const parser = new Parser(encoded);
    const text = parser.list(',', undefined);
    if (parser.at < encoded.length && encoded[parser.at] === '|') {
      // a method: `this`, then the arguments
      parser.at++;
      const args = parser.list(',', undefined);
      parser.end();
      return `this: ${text}; ${args}`;
    }
    parser.end();
    return text;
  } catch {
    return encoded;
  }
}

class Unparsed extends Error {}

class Parser {
  at = 0;
  constructor(private readonly s: string) {}

  end(): void {
    if (this.at !== this.s.length) throw new Unparsed();
  }

  /** Values separated by `sep` up to `close` (or the end, or a `|`, at the top). */
  list(sep: string, close: string | undefined): string {
    const items: string[] = [];
    if (close !== undefined && this.s[this.at] === close) {
      this.at++;
      return '';
    }
    if (close === undefined && this.at === this.s.length) return '';
    for (;;) {
      items.push(this.value());
      if (this.s[this.at] === sep) this.at++;
      else break;
    }
    if (close !== undefined) this.expect(close);
    return items.join(', ');
  }

  value(): string {
    const s = this.s;
    const c = s[this.at];
    if (c === "'") return inspect(this.string());
    if (c === '[') {
      this.at++;
      return `[${this.list(',', ']')}]`;
    }
    if (c === '{') {
      this.at++;
      return `{${this.fields()}}`;
    }
    for (const [token, text] of [['T', 'true'], ['F', 'false'], ['U', 'undefined'], ['N', 'null']] as const) {
      if (c === token && !/[A-Za-z(]/.test(s[this.at + 1] ?? '')) {
        this.at++;
        return text;
      }
    }
    const number = /^(-?(?:\d+n|Infinity|NaN|\d[\d.]*(?:e[+-]\d+)?|\.\d+(?:e[+-]\d+)?))/.exec(s.slice(this.at));
    if (number) {
      this.at += (number[1] as string).length;
      return number[1] as string;
    }
    if (s.startsWith('M{', this.at)) {
      this.at += 2;
      return `Map {${this.pairs()}}`;
    }
    if (s.startsWith('S{', this.at)) {
      this.at += 2;
      return `Set {${this.list(',', '}')}}`;
    }
    return this.builtIn();
  }

  /** `k=>v,...}` of a Map, after the `{`. */
  pairs(): string {
    const items: string[] = [];
    if (this.s[this.at] === '}') {
      this.at++;
      return '';
    }
    for (;;) {
      const key = this.value();
      if (!this.s.startsWith('=>', this.at)) throw new Unparsed();
      this.at += 2;
      items.push(`${key} => ${this.value()}`);
      if (this.s[this.at] === ',') this.at++;
      else break;
    }
    this.expect('}');
    return items.join(', ');
  }

  builtIn(): string {
    const s = this.s;
    const open = /^([A-Z]+)\(/.exec(s.slice(this.at));
    if (!open) throw new Unparsed();
    const tag = open[1] as string;
    this.at += open[0].length;
    switch (tag) {
      case 'C': {
        const name = this.until(')');
        this.expect('{');
        return `${name} {${this.fields()}}`;
      }
      case 'E': {
        const name = this.string();
        this.expect(':');
        const message = this.string();
        this.expect(')');
        this.expect('{');
        const fields = this.fields();
        return `${name}(${inspect(message)})${fields === '' ? '' : ` {${fields}}`}`;
      }
      case 'O': {
        const ctor = this.until(':');
        const inner = this.value();
        this.expect(')');
        return `new ${ctor}(${inner})`;
      }
      case 'D':
        return `Date(${this.raw()})`;
      case 'R':
        return this.raw();
      case 'B':
      case 'AB': {
        const body = this.raw();
        const colon = body.indexOf(':');
        const bytes = Buffer.from(body.slice(colon + 1), 'base64').length;
        return `${body.slice(0, colon)}(${bytes} bytes: ${body.slice(colon + 1)})`;
      }
      case 'URL':
      case 'USP':
        return `${tag === 'URL' ? 'URL' : 'URLSearchParams'}(${inspect(this.raw())})`;
      default:
        throw new Unparsed();
    }
  }

  /** `'<len>:<chars>`: a string, length-prefixed (so it may hold any character). */
  string(): string {
    this.expect("'");
    const colon = this.s.indexOf(':', this.at);
    const length = Number(this.s.slice(this.at, colon));
    if (colon < 0 || !Number.isInteger(length)) throw new Unparsed();
    const text = this.s.slice(colon + 1, colon + 1 + length);
    if (text.length !== length) throw new Unparsed();
    this.at = colon + 1 + length;
    return text;
  }

  /** `'<len>:<key>:<value>,...}`, after the `{`. */
  fields(): string {
    const items: string[] = [];
    if (this.s[this.at] === '}') {
      this.at++;
      return '';
    }
    for (;;) {
      const key = this.string();
      this.expect(':');
      items.push(`${/^[A-Za-z_$][\w$]*$/.test(key) ? key : inspect(key)}: ${this.value()}`);
      if (this.s[this.at] === ',') this.at++;
      else break;
    }
    this.expect('}');
    return items.join(', ');
  }

  /** Text up to the `)` that closes it: the first one a delimiter (or the end) follows. */
  raw(): string {
    for (let i = this.s.indexOf(')', this.at); i >= 0; i = this.s.indexOf(')', i + 1)) {
      const next = this.s[i + 1];
      if (next === undefined || ',]}|)'.includes(next) || this.s.startsWith('=>', i + 1)) {
        const text = this.s.slice(this.at, i);
        this.at = i + 1;
        return text;
      }
    }
    throw new Unparsed();
  }

  until(char: string): string {
    const i = this.s.indexOf(char, this.at);
    if (i < 0) throw new Unparsed();
    const text = this.s.slice(this.at, i);
    this.at = i + 1;
    return text;
  }

  expect(char: string): void {
    if (this.s[this.at] !== char) throw new Unparsed();
    this.at++;
  }
}
