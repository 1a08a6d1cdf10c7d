import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import { crc32 } from 'node:zlib';
import { FRAME_HEADER_BYTES, FormatError, checkPayloadShape, encodeMetaHeader, metaHeaderSteps, take } from './file-format';

/*
 * The journal of a cache file, `<file>.journal` (integers little-endian):
 *
 *   header   "DCJOURNL" | u16 version | u16 flags (0) | u32 metaLength | u32 crc32(meta) | meta JSON {name, baseId}
 *   record*  part+, each: u32 payloadLength (> 0) | u32 crc32(payload) |
 *            payload = v8.serialize([sets, deletes, generation, last])
 *            sets = [k0, v0, k1, v1, ...], deletes = [k0, k1, ...], last = 1 on a record's last part
 *
 * One save appends one record, so a save is in the journal whole or not at all: a record counts
 * only once its last part is read. It is split into parts of a bounded number of entries so that
 * no single deserialize holds the event loop long, however large the save. The journal
 * belongs to the base whose `baseId` it names: a full rewrite of the base gives it a new id, so
 * a journal left by a rewrite that crashed half-way is never applied to the wrong base. A record
 * cut short at the end of the file is the save a crash interrupted (nobody was told it was
 * saved): it is dropped. A damaged record followed by more bytes is corruption.
 */

export const JOURNAL_SUFFIX = '.journal';
const JOURNAL_MAGIC = Buffer.from('DCJOURNL', 'latin1');

/** What the journal's header says. */
export interface JournalMeta {
  readonly name: string;
  readonly baseId: string;
}

/** One save: the entries set and the keys deleted, and the cache's generation then. */
export interface JournalRecord {
  readonly sets: unknown[];
  readonly deletes: unknown[];
  readonly generation: string | undefined;
}

/** How far a scan got: `end` is the offset after the last whole record. */
export interface JournalScan {
  readonly end: number;
  /** The bytes after `end` are a record cut short (a crash during an append), not corruption. */
  readonly torn: boolean;
  /** The journal is an earlier base's, applied from where a compaction carried it (see CacheFileMeta.carries). */
  readonly carried?: boolean;
}

export function encodeJournalHeader(meta: JournalMeta): Buffer {
  return encodeMetaHeader(JOURNAL_MAGIC, meta);
}

/**
 * Where a record's changes come from, part by part: a save hands the store one that reads the
 * map as it was when the save began (see ChangeSnapshot), so a large record is encoded in slices
 * between which the map may change.
 */
export interface RecordSource {
  readonly generation: string | undefined;
  /**
   * Appends up to `max` changes: an entry set as `key, value` to `sets`, a deleted key to
   * `deletes`. Returns how many; fewer than `max` means the source is exhausted.
   */
  fill(sets: unknown[], deletes: unknown[], max: number): number;
}

/** A record held in memory as a source (the exit flush, tests). */
export function recordSource(record: JournalRecord): RecordSource {
  let set = 0;
  let deleted = 0;
  return {
    generation: record.generation,
    fill(sets, deletes, max) {
      let n = 0;
      for (; n < max && set < record.sets.length; n++, set += 2) sets.push(record.sets[set], record.sets[set + 1]);
      for (; n < max && deleted < record.deletes.length; n++, deleted++) deletes.push(record.deletes[deleted]);
      return n;
    },
  };
}

// A part aims at about this many bytes: its serialize (and its deserialize on load) is one
// stretch of synchronous work, so a part of large values holds fewer of them.
const PART_TARGET_BYTES = 512 * 1024;

/**
 * A record's bytes, part by part (each part's 8-byte prefix and payload as one step), so a
 * caller can yield between parts. A part holds at most `perPart` changes, fewer when its
 * values are large (sized by the bytes per change of the part before). The last part is
 * marked: a record counts only once that part is read, so an append cut short is never applied.
 * @throws what v8.serialize throws for a value it cannot write (the culprit's part is in `failedPart`)
 */
export function* encodeJournalParts(source: RecordSource, perPart = 2048): Generator<Buffer, number> {
  const generation = source.generation ?? null;
  let bytes = 0;
  let limit = perPart;
  let part = { sets: [] as unknown[], deletes: [] as unknown[], asked: limit, n: 0 };
  part.n = source.fill(part.sets, part.deletes, part.asked);
  for (;;) {
    // The part is the last when the source ran short, or when the next fill finds nothing.
    let last = part.n < part.asked;
    const next = { sets: [] as unknown[], deletes: [] as unknown[], asked: limit, n: 0 };
    if (!last) {
      next.n = source.fill(next.sets, next.deletes, next.asked);
      last = next.n === 0;
    }
    let payload: Buffer;
    try {
      payload = v8.serialize([part.sets, part.deletes, generation, last ? 1 : 0]);
    } catch (err) {
      throw Object.assign(err as object, { failedPart: { sets: part.sets, deletes: part.deletes } });
    }
    const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
    buf.writeUInt32LE(payload.length, 0);
    buf.writeUInt32LE(crc32(payload), 4);
    payload.copy(buf, FRAME_HEADER_BYTES);
    bytes += buf.length;
    yield buf;
    if (last) return bytes;
    limit = Math.max(1, Math.min(perPart, Math.floor((PART_TARGET_BYTES * part.n) / payload.length)));
    part = next;
  }
}

/**
 * A record's bytes, whole (the exit flush: nothing else runs then).
 * @throws what v8.serialize throws for a value it cannot write
 */
export function encodeJournalRecord(record: JournalRecord, perPart = 2048): Buffer {
  return Buffer.concat([...encodeJournalParts(recordSource(record), perPart)]);
}

/** The journal's header: its meta and length. */
export function* journalHeaderSteps(fileSize: number): Generator<number, { meta: JournalMeta; length: number }, Buffer> {
  return yield* metaHeaderSteps(fileSize, JOURNAL_MAGIC, isJournalMeta, 'journal header lacks name or baseId');
}

/**
 * The records from `start` (just after the header, or after records already read) to the end
 * of a file of `fileSize` bytes, each handed to `onRecord` once its CRC and shape passed (or,
 * with `onParts`, as its parts, once the last one passed).
 * @throws {FormatError} for a damaged record that is not the last thing in the file
 */
export function* journalRecordSteps(
  fileSize: number,
  start: number,
  onRecord: (record: JournalRecord) => void,
  onParts?: (parts: readonly JournalRecord[], end: number) => void,
): Generator<number, JournalScan, Buffer> {
  let offset = start;
  let recordStart = start; // where the record being read began: the end of the whole ones
  let parts: Part[] = [];
  for (let index = 0; ; index++) {
    // A record whose last part never came is the append a crash cut short.
    if (offset === fileSize) return { end: recordStart, torn: parts.length > 0 };
    if (offset + FRAME_HEADER_BYTES > fileSize) return { end: recordStart, torn: true };
    const head = yield* take(FRAME_HEADER_BYTES, 'journal');
    const length = head.readUInt32LE(0);
    const partEnd = offset + FRAME_HEADER_BYTES + length;
    if (partEnd > fileSize) return { end: recordStart, torn: true };
    const payload = yield* take(length, 'journal');
    const part = length === 0 || crc32(payload) !== head.readUInt32LE(4) ? undefined : decodePart(payload, index);
    if (part === undefined) {
      // Damaged as the last thing in the file: the append a crash cut short. Else: corruption.
      if (partEnd === fileSize) return { end: recordStart, torn: true };
      throw new FormatError(`journal part ${index} is damaged (checksum mismatch), and more follows it`);
    }
    parts.push(part);
    offset = partEnd;
    if (part.last) {
      // A follower takes a record part by part (no joined copy of a large one); a load, whole.
      if (onParts !== undefined) onParts(parts, offset);
      else onRecord(joinParts(parts));
      parts = [];
      recordStart = offset;
    }
  }
}

interface Part extends JournalRecord {
  readonly last: boolean;
}

function joinParts(parts: readonly Part[]): JournalRecord {
  if (parts.length === 1) return parts[0] as Part;
  const sets: unknown[] = [];
  const deletes: unknown[] = [];
  for (const part of parts) {
    for (const item of part.sets) sets.push(item);
    for (const key of part.deletes) deletes.push(key);
  }
  return { sets, deletes, generation: (parts[parts.length - 1] as Part).generation };
}

/** A part's payload, or undefined when it is not one (a damaged part). */
function decodePart(payload: Buffer, index: number): Part | undefined {
  try {
    checkPayloadShape(payload, index);
    const value = v8.deserialize(payload) as unknown;
    if (!Array.isArray(value) || value.length !== 4) return undefined;
    const [sets, deletes, generation, last] = value as [unknown, unknown, unknown, unknown];
    if (!Array.isArray(sets) || sets.length % 2 !== 0 || !Array.isArray(deletes)) return undefined;
    if (generation !== null && typeof generation !== 'string') return undefined;
    if (last !== 0 && last !== 1) return undefined;
    return { sets, deletes, generation: generation ?? undefined, last: last === 1 };
  } catch {
    return undefined;
  }
}

/** Applies records to a map, in order: sets, then deletes (a save never both sets and deletes a key). */
export function applyRecords(map: Map<unknown, unknown>, records: readonly JournalRecord[]): void {
  const set = Map.prototype.set;
  const del = Map.prototype.delete;
  for (const { sets, deletes } of records) {
    for (let i = 0; i < sets.length; i += 2) set.call(map, sets[i], sets[i + 1]);
    for (const key of deletes) del.call(map, key);
  }
}

/**
 * Reads the header of the journal at `path` (sync: it is a few bytes): undefined when there is
 * no journal or it is damaged (an unreadable header is treated as no journal only by writers,
 * which then replace it; readers report it).
 */
export function readJournalHeaderSync(path: string): { meta: JournalMeta; length: number; size: number } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const steps = journalHeaderSteps(size);
    let step = steps.next();
    let position = 0;
    while (!step.done) {
      const buf = Buffer.alloc(Math.min(step.value, Math.max(0, size - position)));
      const n = fs.readSync(fd, buf, 0, buf.length, position);
      position += n;
      step = steps.next(buf.subarray(0, n));
    }
    return { ...step.value, size };
  } catch (err) {
    if (err instanceof FormatError) return undefined;
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}

function isJournalMeta(value: unknown): value is JournalMeta {
  const m = value as Partial<JournalMeta> | null;
  return typeof m === 'object' && m !== null && typeof m.name === 'string' && typeof m.baseId === 'string';
}
