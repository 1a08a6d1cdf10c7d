/*
 * Checks of options objects, at construction: a typo or a CacheMan option we do not have must
 * fail loudly, not be ignored (`postprocessor` silently dropped means every run keeps data that
 * should have been processed).
 */

// Option names of each of our classes, declared beside the class; a class inherits its parents'.
const declared = new Map<unknown, readonly string[]>();

// CacheMan's names (and habits) that are not ours, with what to use instead.
const FOREIGN: Record<string, string> = {
  async: 'there is no async option: every lifecycle method already returns a Promise, and AutoSyncCache saves in the background',
  async_timeout: 'there is no async_timeout option: lifecycle methods return Promises; to bound one, race it against a timer',
  asyncTimeout: 'there is no asyncTimeout option: lifecycle methods return Promises; to bound one, race it against a timer',
  pre_processor: "use 'preProcessor'",
  post_processor: "use 'postProcessor'",
  save_on_blank_cache: "use 'saveOnBlank'",
  time_checks: "use 'timeChecks' ([{ seconds, count }])",
  time_bucket_size: "use 'bucketSeconds'",
  nowrapper: "use the 'cache' option of manager.registerCustomCache",
  cache_manager: "use 'manager'",
  row_builder: "use 'rowBuilder'",
  row_reader: "use 'rowReader'",
};

/** Records the option names `cls` adds to those of the class it extends. */
export function declareOptions(cls: abstract new (...args: never[]) => unknown, names: readonly string[]): void {
  declared.set(cls, names);
}

/** Whether `cls` is one of ours (it declared its options), not a user's subclass. */
export function isDeclaredClass(cls: unknown): boolean {
  return declared.has(cls);
}

/**
 * Throws a TypeError unless `options` is a plain options object whose keys are all options of
 * `cls` (and its parents). A class nobody declared (a user's subclass) may take options of its
 * own, so only the shape is checked for it. `owner` starts the message (the cache's name).
 */
export function checkOptionsObject(owner: string, options: unknown, cls: unknown): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${owner}: options: expected an options object, got ${describeValue(options)}`);
  }
  const proto = Object.getPrototypeOf(options) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    const what = (options as { constructor?: { name?: string } }).constructor?.name ?? 'an object';
    const hint = what === 'CacheManager' ? '; pass the manager as { manager }' : '';
    throw new TypeError(`${owner}: options: expected a plain options object, got a ${what}${hint}`);
  }
  const allowed = optionNames(cls);
  if (allowed === undefined) return;
  for (const key of Object.keys(options)) {
    if (allowed.has(key)) continue;
    const foreign = FOREIGN[key];
    const hint = foreign ?? `did you mean '${closest(key, allowed)}'?`;
    throw new TypeError(`${owner}: unknown option '${key}': ${hint}`);
  }
}

/** Throws a TypeError unless `value` is a function, null or undefined. */
export function checkHook(owner: string, option: string, value: unknown): void {
  if (value === undefined || value === null || typeof value === 'function') return;
  throw new TypeError(`${owner}: ${option}: expected a function or null, got ${describeValue(value)}`);
}

/** Throws a TypeError unless `value` is a boolean or undefined. */
export function checkBoolean(owner: string, option: string, value: unknown): void {
  if (value === undefined || typeof value === 'boolean') return;
  throw new TypeError(`${owner}: ${option}: expected true or false, got ${describeValue(value)}`);
}

/** A value as a message shows it: `"file.json" (string)`, `true (boolean)`, `a Map`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)} (string)`;
  if (typeof value === 'object') return `a ${(value as { constructor?: { name?: string } }).constructor?.name ?? 'object'}`;
  if (typeof value === 'function') return 'a function';
  return `${String(value)} (${typeof value})`;
}

function optionNames(cls: unknown): Set<string> | undefined {
  if (!declared.has(cls)) return undefined;
  const names = new Set<string>();
  for (let c = cls; declared.has(c); c = Object.getPrototypeOf(c) as unknown) {
    for (const n of declared.get(c) as readonly string[]) names.add(n);
  }
  return names;
}

/** The allowed name nearest to `key` (edit distance, ignoring case). */
function closest(key: string, allowed: Set<string>): string {
  let best = '';
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const name of allowed) {
    const d = distance(key.toLowerCase(), name.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min((row[j] as number) + 1, (next[j - 1] as number) + 1, (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length] as number;
}
