import * as fs from 'node:fs';
import { type CacheFileMeta, FormatError, headerSteps } from './file-format';
import { openCacheFileSync, parseFileSync } from './file-reader';
import { type JournalRecord, type JournalScan, journalHeaderSteps, journalRecordSteps } from './journal';

/** The id a journal must carry to apply to this base (files from before journals: their save time). @internal */
export function baseIdOf(meta: CacheFileMeta): string {
  return meta.baseId ?? `saved-at:${meta.savedAt}`;
}

/** A journal's header, then its records, when it belongs to base `baseId`; another base's journal is skipped. @internal */
export function* journalSteps(
  fileSize: number,
  baseId: string,
  onRecord: (record: JournalRecord) => void,
): Generator<number, JournalScan | undefined, Buffer> {
  const { meta, length } = yield* journalHeaderSteps(fileSize);
  if (meta.baseId !== baseId) return undefined; // left by a rewrite that crashed after its rename
  return yield* journalRecordSteps(fileSize, length, onRecord);
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
