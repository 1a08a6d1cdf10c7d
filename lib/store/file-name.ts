import { InvalidCacheNameError } from '../errors';

export const CACHE_FILE_EXTENSION = '.v8';
export const MAX_CACHE_NAME_LENGTH = 255;

// Readable names are lower-case only, so two names never map to files that a case-insensitive
// file system (macOS, Windows) would treat as one; they cannot start with a dot, so they never
// hide, never equal '.' or '..', and never collide with temp files (which start with '.').
const READABLE = /^[a-z0-9_][a-z0-9_.-]{0,99}$/;
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/;

/** Throws InvalidCacheNameError unless `name` is a non-empty string of at most 255 characters. */
export function assertCacheName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new InvalidCacheNameError(name, 'expected a string');
  if (name.length === 0) throw new InvalidCacheNameError(name, 'must not be empty');
  if (name.length > MAX_CACHE_NAME_LENGTH) {
    throw new InvalidCacheNameError(name, `longer than ${MAX_CACHE_NAME_LENGTH} characters`);
  }
  // A lone surrogate has no UTF-8 form: the hash (over UTF-8) would map '\uD800' and '\uDFFF' to
  // one file, so such names are refused rather than allowed to collide.
  if (!(name as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new InvalidCacheNameError(name, 'not well-formed Unicode (it holds a lone surrogate)');
  }
}

/**
 * Maps a cache name to a file name, injectively and safely: plain lower-case names are kept as
 * they are; any other name becomes a readable, sanitized prefix plus `~` and 128 bits of its
 * SHA-256. `~` never occurs in plain names, so the two forms cannot collide, and the full name
 * is kept in the file header so a hash collision is detected on load rather than served.
 */
export function cacheFileName(name: string, extension: string = CACHE_FILE_EXTENSION): string {
  assertCacheName(name);
  if (READABLE.test(name) && !WINDOWS_RESERVED.test(name) && !name.endsWith('.')) {
    return name + extension;
  }
  const prefix = name
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '_')
    .replace(/^_+/, '')
    .slice(0, 40);
  const hash = crypto().createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 32);
  return `${prefix}~${hash}${extension}`;
}

/** The manifest's file name: cache files never start with a dot, so it can never collide. */
export const MANIFEST_FILE = '.depcache-manifest.json';

/** node:crypto, loaded at first use: it is a tenth of what `require('depcache')` costs otherwise. */
function crypto(): typeof import('node:crypto') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('node:crypto') as typeof import('node:crypto');
}
