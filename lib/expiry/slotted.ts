/**
 * The caches whose Map holds, under each key, a slot of their EntryBook instead of the value
 * (those that expire or bound entries): whoever copies a Map's entries with Map.prototype
 * methods must read these through their own iterator instead.
 */
export const slottedMaps = new WeakSet<Map<unknown, unknown>>();
