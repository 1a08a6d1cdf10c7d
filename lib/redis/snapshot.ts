import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { type CacheFileMeta, FormatError, decodeSteps } from '../store/file-format';
import { encodeCacheFile } from '../store/file-store';
import type { EntrySnapshot } from '../store/snapshot';

// A Redis snapshot is a cache file (header, CRC-checked frames, trailer: the file store's format
// and checks) cut into parts of about this size before compression, one field of the snapshot
// hash each: large enough that a load is a few dozen replies, small enough that none holds the
// loop long. Each part is deflated (raw, level 1): entries of one shape compress 5-10 times, so
// Redis holds far less beside the hash, and a load receives far fewer bytes (the socket's
// buffers, not the decoding, were what made V8 collect during a load of 1M entries).
const PART_BYTES = 1024 * 1024;
const DEFLATE = { level: 1 };
const deflate = promisify(zlib.deflateRaw);
const FRAME_ENTRIES = 2048;
// Longest stretch of encoding before the writer yields to the event loop (as a file save does).
const SLICE_MS = 2;
// Parts asked for ahead of the one being decoded: Redis sends while this process decodes, and
// no more than a few megabytes wait in buffers (a whole snapshot's would make V8 collect early).
const PARTS_AHEAD = 4;

/** The current snapshot, as the hash's `\0snap` field names it. */
export interface SnapshotPointer {
  readonly id: string;
  /** The hash's version the snapshot holds. */
  readonly version: number;
  readonly parts: number;
  readonly bytes: number;
  readonly entries: number;
}

/** Parses `<id> <version> <parts> <bytes> <entries>`; undefined for anything else. */
export function parsePointer(text: string): SnapshotPointer | undefined {
  const m = /^(\S+) (\d+) (\d+) (\d+) (\d+)$/.exec(text);
  if (m === null) return undefined;
  const [, id, version, parts, bytes, entries] = m as unknown as [string, string, string, string, string, string];
  return { id, version: Number(version), parts: Number(parts), bytes: Number(bytes), entries: Number(entries) };
}

/** The field of part `n` of snapshot `id` in the snapshot hash. */
export function partField(id: string, n: number): string {
  return `${id}:${n}`;
}

/**
 * Encodes `snapshot` as the parts of snapshot `id`, handing each (deflated) to `send` (which may
 * wait, to bound what is in flight), yielding to the event loop between frames every few ms.
 * Resolves the number of parts and the bytes they inflate to. @throws {CacheSerializationError} naming an entry v8 refused
 */
export async function writeSnapshotParts(
  name: string,
  snapshot: EntrySnapshot,
  id: string,
  send: (field: string, part: Buffer) => Promise<void>,
): Promise<{ parts: number; bytes: number }> {
  let parts = 0;
  let bytes = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let sliceStart = performance.now();
  let piece = 0;
  const flush = async () => {
    const raw = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    bytes += raw.length;
    // On the thread pool: a part compresses in a few ms that the event loop does not wait for.
    await send(partField(id, parts++), await deflate(raw, DEFLATE));
    sliceStart = performance.now();
  };
  for (const buf of encodeCacheFile(name, snapshot, id, FRAME_ENTRIES)) {
    pending.push(buf);
    pendingBytes += buf.length;
    // Pieces alternate: the header, then a frame's prefix and its payload, ...: a part ends
    // after a payload (an even piece), so no frame is cut in two.
    const afterPayload = piece++ % 2 === 0;
    if (!afterPayload) continue;
    if (pendingBytes >= PART_BYTES) await flush();
    else if (performance.now() - sliceStart > SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
  if (pendingBytes > 0 || parts === 0) await flush();
  return { parts, bytes };
}

/**
 * Decodes a snapshot from its parts, asked for in order, a few ahead, through `request` (null:
 * the part is gone, and so is the snapshot: another replaced it meanwhile). Resolves its
 * batches, or undefined when a part was gone. @throws {FormatError} for damaged parts
 */
export async function readSnapshotParts(
  name: string,
  pointer: SnapshotPointer,
  request: (field: string) => Promise<Buffer | null>,
): Promise<{ meta: CacheFileMeta; batches: unknown[][] } | undefined> {
  const { id, parts, bytes } = pointer;
  const asked: Array<Promise<Buffer | null>> = [];
  const ask = (n: number) => {
    if (n >= parts) return;
    const reply = request(partField(id, n));
    reply.catch(() => undefined); // awaited in turn; one that fails after an earlier failure is not unhandled
    asked.push(reply);
  };
  for (let n = 0; n < PARTS_AHEAD; n++) ask(n);
  const batches: unknown[][] = [];
  const steps = decodeSteps(bytes, (pairs) => batches.push(pairs));
  let chunk: Buffer = Buffer.alloc(0);
  let at = 0;
  let next = 0;
  let read = 0;
  let step = steps.next();
  while (!step.done) {
    const want = step.value;
    // Parts end at frame boundaries, so a frame is copied only when a part was cut inside it.
    while (chunk.length - at < want && next < parts) {
      const packed = await (asked[next] as Promise<Buffer | null>);
      asked[next] = Promise.resolve(null); // let the buffer go once decoded
      ask(next + PARTS_AHEAD);
      next++;
      if (packed === null) return undefined;
      const part = inflate(packed, bytes - read, next - 1);
      read += part.length;
      chunk = at === chunk.length ? part : Buffer.concat([chunk.subarray(at), part]);
      at = 0;
    }
    const out = chunk.subarray(at, at + want);
    at += out.length;
    step = steps.next(out);
  }
  if (next !== parts || at !== chunk.length || read !== bytes) throw new FormatError(`the snapshot's ${parts} parts do not hold ${bytes} bytes`);
  if (step.value.name !== name) throw new FormatError(`the snapshot holds cache ${JSON.stringify(step.value.name)}, not this one`);
  return { meta: step.value, batches };
}

/** A part's bytes, never more than `most` (a part planted to inflate without end is damage). */
function inflate(packed: Buffer, most: number, n: number): Buffer {
  try {
    return zlib.inflateRawSync(packed, { maxOutputLength: Math.max(1, most) });
  } catch (err) {
    throw new FormatError(`part ${n} does not inflate (${(err as Error).message})`);
  }
}
