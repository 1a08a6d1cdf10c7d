import { CacheSerializationError } from '../errors';
import { FormatError } from './file-format';
import { toJsonSafe } from './json-safe';
import type { TextFormat } from './text-file-store';

// The CSV packages load with the first CSV file read or written, not with the package.
/* eslint-disable @typescript-eslint/no-require-imports */
const csvParse = (): typeof import('csv-parse/sync').parse => (require('csv-parse/sync') as typeof import('csv-parse/sync')).parse;
const csvStringify = (): typeof import('csv-stringify/sync').stringify =>
  (require('csv-stringify/sync') as typeof import('csv-stringify/sync')).stringify;
/* eslint-enable @typescript-eslint/no-require-imports */

/** Turns an entry into the cells of one CSV row (CacheMan's row_builder). */
export type RowBuilder<K, V> = (key: K, value: V) => readonly unknown[];
/** Turns the cells of one CSV row back into an entry (CacheMan's row_reader). */
export type RowReader<K, V> = (row: string[]) => readonly [K, V];

// The last line of every file we write: without it a file cut at a row boundary would load.
const TRAILER = '# depcache end';

/** A cell as text: strings as they are, numbers and dates plainly, anything else as JSON. */
function cell(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(toJsonSafe(value));
}

/**
 * CSV rows through a row builder and reader (defaults: `[key, value]` and the first two cells,
 * as strings), quoted by csv-stringify and parsed by csv-parse (commas, quotes and newlines
 * inside cells are safe), and a trailer line so truncation is detected. Rows may differ in
 * length; CRLF line ends and blank lines (a hand edit, a file saved by a spreadsheet) are
 * accepted: the writer quotes empty cells, so no row it writes is ever a blank line.
 */
export function csvFormat<K, V>(rowBuilder?: RowBuilder<K, V>, rowReader?: RowReader<K, V>, header?: readonly string[]): TextFormat {
  const build = rowBuilder ?? ((k: K, v: V) => [k, v]);
  const read = rowReader ?? ((row: string[]) => [row[0], row[1]] as unknown as readonly [K, V]);
  return {
    extension: '.csv',
    encode(name, entries) {
      const rows = entries.map(([k, v]) => {
        const cells = build(k as K, v as V);
        if (!Array.isArray(cells) || cells.length === 0) {
          const got = Array.isArray(cells) ? 'no cells' : `${typeof cells}, not an array of cells`;
          throw new CacheSerializationError(name, k, true, { cause: new TypeError(`the row builder returned ${got}`) });
        }
        return cells.map(cell);
      });
      const head = header ? [header.map(cell)] : [];
      // quoted_empty: a row of one empty cell would otherwise be a blank line, which reads skip.
      // quoted_match: a cell starting with '#' can never pass for the end marker.
      return `${csvStringify()([...head, ...rows], { quoted_empty: true, quoted_match: /^#/ })}${TRAILER}\n`;
    },
    decode(_name, text) {
      const marker = END.exec(text);
      if (marker === null) throw new FormatError('the end marker is missing: the file is truncated');
      const parse = csvParse(); // outside the try: a package that fails to load is not a bad file
      let rows: string[][];
      try {
        rows = parse(text.slice(0, marker.index), { relax_column_count: true, skip_empty_lines: true }) as string[][];
      } catch (err) {
        throw new FormatError(`not valid CSV (${(err as Error).message})`);
      }
      if (header) rows = rows.slice(1);
      // CSV keeps no generation: a load gives a new one (results memoized over it are recomputed).
      const entries = rows.map((row) => {
        const entry = read(row);
        if (!Array.isArray(entry) || entry.length !== 2) throw new FormatError('the row reader did not return [key, value]');
        return [entry[0], entry[1]] as [unknown, unknown];
      });
      return { entries };
    },
  };
}

// The marker as the last line, after a line end (or alone), with LF or CRLF, the final line end optional.
const END = /(?<=^|\n)# depcache end(?:\r?\n)?$/;
