// Redis key names. Each part is escaped so that no two (manager, cache) pairs share a key, and a
// cache's keys (its hash, its quarantined copies) carry one hash tag, so that they live in one
// slot of a Redis Cluster: `<prefix>:{<manager>:<cache>}`. The bus of a manager is
// `<prefix>:{<manager>}:bus`.

/** Escapes the characters that delimit parts or hash tags (`%`, `:`, `{`, `}`) as `%XX`. */
export function escapeKeyPart(part: string): string {
  return part.replace(/[%:{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** @throws {TypeError} when the prefix holds a brace (it would move the hash tag) */
export function checkKeyPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || prefix.length === 0) {
    throw new TypeError(`keyPrefix: expected a non-empty string, got ${String(prefix)} (${typeof prefix})`);
  }
  if (/[{}]/.test(prefix)) throw new TypeError(`keyPrefix: must not contain { or } (Redis Cluster hash tags), got ${prefix}`);
  return prefix;
}

export function cacheKey(prefix: string, manager: string, cache: string): string {
  return `${prefix}:{${escapeKeyPart(manager)}:${escapeKeyPart(cache)}}`;
}

export function busKey(prefix: string, manager: string): string {
  return `${prefix}:{${escapeKeyPart(manager)}}:bus`;
}

/** Keys of a save, as a bus message carries them: u32 length + bytes, each. */
export function packFields(fields: readonly Buffer[]): Buffer {
  let bytes = 0;
  for (const f of fields) bytes += 4 + f.length;
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const f of fields) {
    out.writeUInt32LE(f.length, at);
    at += 4 + f.copy(out, at + 4);
  }
  return out;
}

/** @throws {RangeError} for bytes that are not a packed list */
export function unpackFields(packed: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < packed.length) {
    if (at + 4 > packed.length) throw new RangeError('truncated field list');
    const length = packed.readUInt32LE(at);
    if (at + 4 + length > packed.length) throw new RangeError('truncated field list');
    out.push(packed.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

/** A cache's change log: which fields changed at which version (see scripts.ts). */
export function logKey(cacheKey: string): string {
  return `${cacheKey}:log`;
}

/** A cache's snapshot parts (see scripts.ts). */
export function snapshotKey(cacheKey: string): string {
  return `${cacheKey}:snap`;
}
