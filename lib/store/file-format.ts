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
  /**
   * Distinct entries the file holds. The frames may hold a few more pairs: a key changed while
   * its save ran can be written twice with the same value, and loading keeps one.
   */
  readonly entries: number;
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
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const head = Buffer.allocUnsafe(HEADER_FIXED_BYTES);
  MAGIC.copy(head, 0);
  head.writeUInt16LE(FORMAT_VERSION, 8);
  head.writeUInt16LE(0, 10);
  head.writeUInt32LE(json.length, 12);
  head.writeUInt32LE(crc32(json), 16);
  return Buffer.concat([head, json]);
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

/** Reads and checks the header; returns the meta and where the first frame starts. */
export function decodeHeader(buf: Buffer): { meta: CacheFileMeta; offset: number } {
  if (buf.length < HEADER_FIXED_BYTES) throw new FormatError('file is shorter than its header');
  if (!buf.subarray(0, 8).equals(MAGIC)) throw new FormatError('not a depcache file (bad magic)');
  const version = buf.readUInt16LE(8);
  if (version !== FORMAT_VERSION) {
    throw new FormatError(
      `written by format version ${version}, this depcache reads version ${FORMAT_VERSION}`,
      'version',
    );
  }
  if (buf.readUInt16LE(10) !== 0) throw new FormatError('unknown header flags');
  const metaLength = buf.readUInt32LE(12);
  if (metaLength > MAX_META_BYTES || HEADER_FIXED_BYTES + metaLength > buf.length) {
    throw new FormatError('header is truncated');
  }
  const json = buf.subarray(HEADER_FIXED_BYTES, HEADER_FIXED_BYTES + metaLength);
  if (crc32(json) !== buf.readUInt32LE(16)) throw new FormatError('header checksum mismatch');
  let meta: unknown;
  try {
    meta = JSON.parse(json.toString('utf8'));
  } catch {
    throw new FormatError('header is not valid JSON');
  }
  if (!isMeta(meta)) throw new FormatError('header lacks name, savedAt or entries');
  return { meta, offset: HEADER_FIXED_BYTES + metaLength };
}

/**
 * Checks every frame and the trailer, calling `onBatch` with each decoded `[k, v, ...]` array.
 * Nothing is handed out before its frame's CRC passed; callers that must not half-load collect
 * batches and apply them only after this returns.
 */
export function decodeFrames(
  buf: Buffer,
  offset: number,
  meta: CacheFileMeta,
  onBatch: (pairs: unknown[]) => void,
): void {
  let frames = 0;
  let entries = 0;
  for (;;) {
    if (offset + FRAME_HEADER_BYTES > buf.length) throw new FormatError('file is truncated');
    const length = buf.readUInt32LE(offset);
    if (length === 0) break;
    const start = offset + FRAME_HEADER_BYTES;
    if (start + length > buf.length) throw new FormatError(`frame ${frames} is truncated`);
    const payload = buf.subarray(start, start + length);
    if (crc32(payload) !== buf.readUInt32LE(offset + 4)) {
      throw new FormatError(`frame ${frames} checksum mismatch`);
    }
    let pairs: unknown;
    try {
      pairs = v8.deserialize(payload);
    } catch {
      throw new FormatError(`frame ${frames} does not deserialize`);
    }
    if (!Array.isArray(pairs) || pairs.length % 2 !== 0) {
      throw new FormatError(`frame ${frames} is not a list of entries`);
    }
    onBatch(pairs);
    entries += pairs.length / 2;
    frames++;
    offset = start + length;
  }
  if (offset + TRAILER_BYTES !== buf.length) {
    throw new FormatError(offset + TRAILER_BYTES > buf.length ? 'trailer is truncated' : 'data after trailer');
  }
  if (crc32(buf.subarray(offset, offset + 16)) !== buf.readUInt32LE(offset + 16)) {
    throw new FormatError('trailer checksum mismatch');
  }
  if (buf.readUInt32LE(offset + 4) !== frames || buf.readDoubleLE(offset + 8) !== entries) {
    throw new FormatError('trailer counts do not match the frames');
  }
  if (entries < meta.entries) throw new FormatError('fewer entries than the header says');
}

/** Decodes a whole file into one array of `[k, v, ...]` batches; throws FormatError on any damage. */
export function decodeFile(buf: Buffer): { meta: CacheFileMeta; batches: unknown[][] } {
  const { meta, offset } = decodeHeader(buf);
  const batches: unknown[][] = [];
  decodeFrames(buf, offset, meta, (pairs) => batches.push(pairs));
  return { meta, batches };
}

function isMeta(value: unknown): value is CacheFileMeta {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return (
    typeof m.name === 'string' &&
    typeof m.savedAt === 'number' &&
    typeof m.entries === 'number' &&
    Number.isInteger(m.entries) &&
    m.entries >= 0
  );
}
