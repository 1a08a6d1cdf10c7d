import * as fs from 'node:fs';
import { type CacheFileMeta, type JournalCarry, FormatError, headerSteps, take } from './file-format';
import { openCacheFileSync, parseFileSync } from './file-reader';
import { type JournalRecord, type JournalScan, journalHeaderSteps, journalRecordSteps } from './journal';

/** The id a journal must carry to apply to this base (files from before journals: their save time). @internal */
export function baseIdOf(meta: CacheFileMeta): string {
  return meta.baseId ?? `saved-at:${meta.savedAt}`;
}

/**
 * A journal's header, then its records, when it belongs to base `baseId`, or to the earlier base
 * that base carries records of (`carries`: from there on). Another base's journal is skipped.
 * @internal
 */
export function* journalSteps(
  fileSize: number,
  baseId: string,
  onRecord: (record: JournalRecord) => void,
  carries?: JournalCarry,
): Generator<number, JournalScan | undefined, Buffer> {
  const { meta, length } = yield* journalHeaderSteps(fileSize);
  if (meta.baseId === baseId) return yield* journalRecordSteps(fileSize, length, onRecord);
  // A compaction that crashed between its two renames: the records before `from` are in the base.
  if (carries === undefined || meta.baseId !== carries.baseId || carries.from < length || carries.from > fileSize) return undefined;
  for (let at = length; at < carries.from; at += SKIP_BYTES) yield* take(Math.min(SKIP_BYTES, carries.from - at), 'journal');
  return { ...(yield* journalRecordSteps(fileSize, carries.from, onRecord)), carried: true };
}

const SKIP_BYTES = 1024 * 1024;

/** The journal steps that apply to a base of `meta`. @internal */
export function journalStepsFor(fileSize: number, meta: CacheFileMeta, onRecord: (record: JournalRecord) => void): Generator<number, JournalScan | undefined, Buffer> {
  return journalSteps(fileSize, baseIdOf(meta), onRecord, meta.carries);
}

/** The header of a base file, read synchronously; undefined when there is none (or it is damaged). @internal */
export function readBaseMetaSync(path: string): { meta: CacheFileMeta; size: number } | undefined {
  const file = openCacheFileSync(path, path);
  if (file === undefined) return undefined;
  try {
    return { meta: parseFileSync(path, path, file, headerSteps(file.size)).meta, size: file.size };
  } catch (err) {
    if (err instanceof FormatError) return undefined;
    throw err;
  } finally {
    fs.closeSync(file.handle);
  }
}
