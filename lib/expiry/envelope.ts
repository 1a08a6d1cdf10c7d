/*
 * How an entry's expiry time travels through a store: its value is saved wrapped as
 * `{ "\u0000depcache:expiresAt": <ms since the epoch>, "value": <value> }`, a plain object that
 * v8, JSON and Redis all keep as it is. Entries that never expire are saved as they are, so a
 * cache that never uses expiry writes exactly what it wrote before. A load unwraps every value of
 * this shape; the NUL in the field name keeps it apart from any object a program builds by
 * accident.
 */

/** The field that marks a saved value as carrying an expiry time. */
export const EXPIRES_FIELD = '\u0000depcache:expiresAt';

/** A saved value with its expiry time. */
export interface ExpiryEnvelope {
  readonly [EXPIRES_FIELD]: number;
  readonly value: unknown;
}

export function wrapExpiring(value: unknown, expiresAt: number): ExpiryEnvelope {
  return { [EXPIRES_FIELD]: expiresAt, value };
}

/** Whether a loaded value is an envelope (an object with exactly the two fields, a numeric time). */
export function isExpiryEnvelope(value: unknown): value is ExpiryEnvelope {
  if (typeof value !== 'object' || value === null || !(EXPIRES_FIELD in value)) return false;
  const at = (value as Record<string, unknown>)[EXPIRES_FIELD];
  return typeof at === 'number' && !Number.isNaN(at) && 'value' in value && Object.keys(value).length === 2;
}
