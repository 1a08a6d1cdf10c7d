import * as v8 from 'node:v8';
import { crc32 } from 'node:zlib';

/*
 * The depcache file format, version 1 (all integers little-endian):
 *
 *   header   "DEPCACHE" | u16 version | u16 flags (0) | u32 metaLength | u32 crc32(meta) | meta (JSON)
 *   frame*   u32 payloadLength (> 0) | u32 crc32(payload) | payload = v8.serialize([k0, v0, k1, v1, ...])
 *   trailer  u32 0 | u32 frameCount | f64 entryCount | u32 crc32(previous 16 bytes)
 *
 * The trailer must end the file exactly, so a file cut at a frame boundary is as detectable as one
 * cut mid-frame, and every byte is covered by a CRC or a structural check.
 */

export const MAGIC = Buffer.from('DEPCACHE', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER_FIXED_BYTES = 20;
export const FRAME_HEADER_BYTES = 8;
export const TRAILER_BYTES = 20;
const MAX_META_BYTES = 64 * 1024;

/** What the header of a cache file says about it; readable without decoding any entry. */
export interface CacheFileMeta {
  /** The cache's real name (the file name may be a hash of it). */
  readonly name: string;
  /** Wall-clock time of the save, in ms since the epoch. */
  readonly savedAt: number;
  /** The cache's generation when it was saved (absent in files from older versions). */
  readonly generation?: string;
  /** Names this base: a journal applies only to the base whose id it carries. */
  readonly baseId?: string;
  /**
   * Set by a compaction, which writes the new base without holding the lock and carries the
   * records appended meanwhile into the new base's journal: the journal of base `baseId`, from
   * byte `from` on, belongs to this base too. A crash between the base's rename and the carried
   * journal's leaves exactly that journal beside this base; its records after `from` still apply.
   */
  readonly carries?: JournalCarry;
  /**
   * Distinct entries the file holds. The frames may hold a few more pairs: a key changed while
   * its save ran can be written twice with the same value, and loading keeps one.
   */
  readonly entries: number;
}

/** Which journal records a compacted base took over (see {@link CacheFileMeta.carries}). */
export interface JournalCarry {
  readonly baseId: string;
  readonly from: number;
}

/** Why a buffer is not a valid cache file. `version` marks a file from an unknown format version. */
export class FormatError extends Error {
  constructor(
    message: string,
    readonly kind: 'corrupt' | 'version' = 'corrupt',
  ) {
    super(message);
  }
}

export function encodeHeader(meta: CacheFileMeta): Buffer {
  return encodeMetaHeader(MAGIC, meta);
}

/** The 8-byte prefix of a frame whose payload is `payload`. */
export function encodeFrameHeader(payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload), 4);
  return head;
}

export function encodeTrailer(frames: number, entries: number): Buffer {
  const tail = Buffer.allocUnsafe(TRAILER_BYTES);
  tail.writeUInt32LE(0, 0);
  tail.writeUInt32LE(frames, 4);
  tail.writeDoubleLE(entries, 8);
  tail.writeUInt32LE(crc32(tail.subarray(0, 16)), 16);
  return tail;
}

/** Serializes one batch of entries as a flat `[k0, v0, k1, v1, ...]` array. Throws what v8 throws. */
export function encodePayload(pairs: unknown[]): Buffer {
  return v8.serialize(pairs);
}

/**
 * The decoder as a pull parser: it yields how many bytes it needs next and is resumed with them
 * (fewer only at the end of the file). One parser serves whole buffers and files read frame by
 * frame, sync or async, so a file is never read whole (no 2 GiB limit) and nothing is read or
 * allocated that its declared sizes cannot fit into `fileSize`. Every decoded batch goes to
 * `onBatch` only after its CRC and shape checks passed; callers that must not half-load collect
 * batches and use them only once this returns.
 */
export function* decodeSteps(
  fileSize: number,
  onBatch: (pairs: unknown[]) => void,
): Generator<number, CacheFileMeta, Buffer> {
  return yield* frameSteps(fileSize, (payload, frame, entries) => onBatch(decodeFrame(payload, frame, entries)));
}

/**
 * {@link decodeSteps} without the deserializing: each frame's payload goes to `onFrame` once its
 * CRC and shape checks passed, with its number and its count of entries (as its array declares
 * it), and the file's structure (trailer, counts) is checked as it is; {@link decodeFrame} makes
 * the entries of a payload later.
 */
export function* frameSteps(
  fileSize: number,
  onFrame: (payload: Buffer, frame: number, entries: number) => void,
): Generator<number, CacheFileMeta, Buffer> {
  const { meta, length: headerLength } = yield* headerSteps(fileSize);
  let offset = headerLength;
  let frames = 0;
  let entries = 0;
  let frameHead: Buffer;
  for (;;) {
    if (offset + FRAME_HEADER_BYTES > fileSize) throw new FormatError('file is truncated');
    frameHead = yield* take(FRAME_HEADER_BYTES, 'file');
    offset += FRAME_HEADER_BYTES;
    const length = frameHead.readUInt32LE(0);
    if (length === 0) break; // the trailer's first 8 bytes
    // A declared size that does not fit the file is damage: never read or allocate for it.
    if (offset + length > fileSize) throw new FormatError(`frame ${frames} is truncated`);
    const payload = yield* take(length, `frame ${frames}`);
    offset += length;
    if (crc32(payload) !== frameHead.readUInt32LE(4)) {
      throw new FormatError(`frame ${frames} checksum mismatch`);
    }
    const pairs = checkPayloadShape(payload, frames) / 2;
    onFrame(payload, frames, pairs);
    entries += pairs;
    frames++;
  }
  if (offset - FRAME_HEADER_BYTES + TRAILER_BYTES !== fileSize) {
    throw new FormatError(
      offset - FRAME_HEADER_BYTES + TRAILER_BYTES > fileSize ? 'trailer is truncated' : 'data after trailer',
    );
  }
  const rest = yield* take(TRAILER_BYTES - FRAME_HEADER_BYTES, 'trailer');
  const trailer = Buffer.concat([frameHead, rest]);
  if (crc32(trailer.subarray(0, 16)) !== trailer.readUInt32LE(16)) {
    throw new FormatError('trailer checksum mismatch');
  }
  if (trailer.readUInt32LE(4) !== frames || trailer.readDoubleLE(8) !== entries) {
    throw new FormatError('trailer counts do not match the frames');
  }
  if (entries < meta.entries) throw new FormatError('fewer entries than the header says');
  return meta;
}

/** The header part of {@link decodeSteps}: the meta and the header's length in bytes. */
export function* headerSteps(fileSize: number): Generator<number, { meta: CacheFileMeta; length: number }, Buffer> {
  return yield* metaHeaderSteps(fileSize, MAGIC, isMeta, 'header lacks name, savedAt or entries');
}

/**
 * A header of our layout (magic, version, flags, CRC-checked JSON meta), for cache files and
 * journals alike; `isValid` checks the meta's fields.
 */
export function* metaHeaderSteps<M>(
  fileSize: number,
  magic: Buffer,
  isValid: (meta: unknown) => meta is M,
  invalidMessage: string,
): Generator<number, { meta: M; length: number }, Buffer> {
  const head = yield* take(HEADER_FIXED_BYTES, 'header', 'file is shorter than its header');
  if (!head.subarray(0, 8).equals(magic)) throw new FormatError('not a depcache file (bad magic)');
  const version = head.readUInt16LE(8);
  if (version !== FORMAT_VERSION) {
    throw new FormatError(
      `written by format version ${version}, this depcache reads version ${FORMAT_VERSION}`,
      'version',
    );
  }
  if (head.readUInt16LE(10) !== 0) throw new FormatError('unknown header flags');
  const metaLength = head.readUInt32LE(12);
  if (metaLength > MAX_META_BYTES || HEADER_FIXED_BYTES + metaLength > fileSize) {
    throw new FormatError('header is truncated');
  }
  const json = yield* take(metaLength, 'header');
  if (crc32(json) !== head.readUInt32LE(16)) throw new FormatError('header checksum mismatch');
  let meta: unknown;
  try {
    meta = JSON.parse(json.toString('utf8'));
  } catch {
    throw new FormatError('header is not valid JSON');
  }
  if (!isValid(meta)) throw new FormatError(invalidMessage);
  return { meta, length: HEADER_FIXED_BYTES + metaLength };
}

/** The header bytes of our layout for `meta` (cache files and journals). */
export function encodeMetaHeader(magic: Buffer, meta: object): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const head = Buffer.allocUnsafe(HEADER_FIXED_BYTES);
  magic.copy(head, 0);
  head.writeUInt16LE(FORMAT_VERSION, 8);
  head.writeUInt16LE(0, 10);
  head.writeUInt32LE(json.length, 12);
  head.writeUInt32LE(crc32(json), 16);
  return Buffer.concat([head, json]);
}

/** Runs a parser over bytes already in memory. */
export function parseBuffer<T>(steps: Generator<number, T, Buffer>, buf: Buffer): T {
  let offset = 0;
  let step = steps.next();
  while (!step.done) {
    const chunk = buf.subarray(offset, offset + step.value);
    offset += chunk.length;
    step = steps.next(chunk);
  }
  return step.value;
}

/** Decodes a whole file held in memory into its `[k, v, ...]` batches; throws FormatError on any damage. */
export function decodeFile(buf: Buffer): { meta: CacheFileMeta; batches: unknown[][] } {
  const batches: unknown[][] = [];
  const meta = parseBuffer(decodeSteps(buf.length, (pairs) => batches.push(pairs)), buf);
  return { meta, batches };
}

/** Asks the parser's driver for exactly `n` bytes; fewer means the file ended early. */
export function* take(n: number, what: string, shortMessage = `${what} is truncated`): Generator<number, Buffer, Buffer> {
  if (n === 0) return Buffer.alloc(0);
  const buf: Buffer = yield n;
  if (buf.length < n) throw new FormatError(shortMessage);
  return buf;
}

// v8's serialization header, and the tags of the arrays our writers have produced: dense now,
// sparse from versions that filled frames by index (v8 writes a holey array as a sparse one).
const V8_VERSION_TAG = 0xff;
const V8_DENSE_ARRAY_TAG = 0x41; // 'A'
const V8_SPARSE_ARRAY_TAG = 0x61; // 'a'

/**
 * Rejects a payload that is not what our writer produces before v8 sees it: a crafted frame (a
 * sparse array of length 2e8 in 100 bytes, say) would otherwise keep v8.deserialize busy for
 * seconds or hours. Our frames are arrays of pairs with no holes, so every element takes a byte
 * at least (two in the sparse form, index and value): the declared length must be even and fit
 * in the payload.
 */
/**
 * The entries of a frame's payload that passed {@link frameSteps}' checks; `entries`: as many as
 * its array declared there.
 * @throws {FormatError} when it does not deserialize to that many entries
 */
export function decodeFrame(payload: Buffer, frame: number, entries: number): unknown[] {
  let pairs: unknown;
  try {
    pairs = v8.deserialize(payload);
  } catch {
    throw new FormatError(`frame ${frame} does not deserialize`);
  }
  if (!Array.isArray(pairs) || pairs.length !== entries * 2) {
    throw new FormatError(`frame ${frame} is not a list of entries`);
  }
  return pairs;
}

/** Checks that a payload is a v8 array of an even length that fits it; returns that length. */
export function checkPayloadShape(payload: Buffer, frame: number): number {
  let at = 0;
  if (payload[at++] !== V8_VERSION_TAG) throw new FormatError(`frame ${frame} is not a list of entries (no v8 header)`);
  at = readVarint(payload, at).next;
  while (payload[at] === 0) at++; // v8 may pad with zero bytes
  const tag = payload[at++];
  if (tag !== V8_DENSE_ARRAY_TAG && tag !== V8_SPARSE_ARRAY_TAG) {
    throw new FormatError(`frame ${frame} is not a list of entries (depcache writes arrays only)`);
  }
  const length = readVarint(payload, at);
  const bytesPerElement = tag === V8_DENSE_ARRAY_TAG ? 1 : 2;
  if (length.value % 2 !== 0 || length.value * bytesPerElement > payload.length - length.next) {
    throw new FormatError(
      `frame ${frame} is not a list of entries: it declares ${length.value} elements in ${payload.length} bytes`,
    );
  }
  return length.value;
}

function readVarint(buf: Buffer, at: number): { value: number; next: number } {
  let value = 0;
  let factor = 1;
  for (let i = 0; i < 5; i++) {
    const byte = buf[at + i];
    if (byte === undefined) break;
    value += (byte & 0x7f) * factor;
    factor *= 128;
    if ((byte & 0x80) === 0) return { value, next: at + i + 1 };
  }
  throw new FormatError('a length in a frame is malformed');
}

function isMeta(value: unknown): value is CacheFileMeta {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return (
    typeof m.name === 'string' &&
    typeof m.savedAt === 'number' &&
    typeof m.entries === 'number' &&
    Number.isInteger(m.entries) &&
    m.entries >= 0 &&
    (m.generation === undefined || typeof m.generation === 'string') &&
    (m.baseId === undefined || typeof m.baseId === 'string') &&
    (m.carries === undefined || isCarry(m.carries))
  );
}

function isCarry(value: unknown): value is JournalCarry {
  const c = value as Partial<JournalCarry> | null;
  return typeof c === 'object' && c !== null && typeof c.baseId === 'string' && Number.isSafeInteger(c.from) && (c.from as number) >= 0;
}
