import { FormatError } from './file-format';
import { fromJsonSafe, toJsonSafe } from './json-safe';
import type { TextFormat } from './text-file-store';

/**
 * `<name>.json`: `{"depcache": "json", "version": 1, "name": ..., "savedAt": ..., "entries": [[k, v], ...]}`,
 * pretty-printed, with keys and values in the reversible JSON-safe encoding (Maps, Dates, BigInt
 * survive). Truncation always breaks the JSON, so it is detected; the file may be edited by hand.
 */
export const JSON_FORMAT: TextFormat = {
  extension: '.json',
  encode(name, entries, generation) {
    const body = {
      depcache: 'json',
      version: 1,
      name,
      savedAt: Date.now(),
      generation,
      entries: entries.map(([k, v]) => [toJsonSafe(k), toJsonSafe(v)]),
    };
    return `${JSON.stringify(body, null, 1)}\n`;
  },
  decode(name, text) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new FormatError(`not valid JSON (${(err as Error).message})`);
    }
    const b = body as { depcache?: unknown; version?: unknown; name?: unknown; entries?: unknown; generation?: unknown };
    if (typeof body !== 'object' || body === null || b.depcache !== 'json') {
      throw new FormatError('not a depcache JSON cache');
    }
    if (b.version !== 1) throw new FormatError(`written by JSON format version ${String(b.version)}`, 'version');
    if (b.name !== name) throw new FormatError(`file holds cache ${JSON.stringify(b.name)}, not this one`);
    if (!Array.isArray(b.entries) || !b.entries.every((e) => Array.isArray(e) && e.length === 2)) {
      throw new FormatError('entries is not a list of [key, value] pairs');
    }
    return {
      entries: (b.entries as Array<[unknown, unknown]>).map(([k, v]) => [fromJsonSafe(k), fromJsonSafe(v)]),
      generation: typeof b.generation === 'string' ? b.generation : undefined,
    };
  },
};
