import { isExpiryEnvelope, wrapExpiring, EXPIRES_FIELD } from '../expiry/envelope';
import type { CacheStore, StoreCapabilities, StoreSave, StoreSyncSave, StoredContents, StoredEntry } from './cache-store';
import { type DecodedEntries, quarantine } from './file-store';
import type { EntrySnapshot } from './snapshot';
import type { TextFileStore } from './text-file-store';

/**
 * The JSON and CSV caches' files through the public store boundary: whole saves only (a text
 * file is rewritten in one piece, atomically), damaged files moved aside by the core's
 * `onCorrupt` policy through {@link quarantine}.
 */
export class TextCacheStore implements CacheStore {
  readonly capabilities: StoreCapabilities;

  constructor(
    readonly files: TextFileStore,
    keeps: { readonly expiry: boolean; readonly generations: boolean },
  ) {
    this.capabilities = { expiry: keeps.expiry, generations: keeps.generations, changes: false };
  }

  async load(name: string): Promise<StoredContents | undefined> {
    // 'throw': the core applies the cache's policy, through quarantine() below.
    return contentsOf(await this.files.read(name, 'throw', () => undefined));
  }

  loadSync(name: string): StoredContents | undefined {
    return contentsOf(this.files.readSync(name, 'throw', () => undefined));
  }

  async save(name: string, save: StoreSave): Promise<void> {
    const pairs: unknown[] = [];
    for await (const batch of save.batches()) collect(pairs, batch.sets);
    await this.files.write(name, pairSnapshot(pairs, save.generation));
  }

  saveSync(name: string, save: StoreSyncSave): void {
    const pairs: unknown[] = [];
    for (const batch of save.batches()) collect(pairs, batch.sets);
    this.files.writeSync(name, pairSnapshot(pairs, save.generation));
  }

  remove(name: string): Promise<void> {
    return this.files.remove(name);
  }

  async quarantine(name: string): Promise<string> {
    return quarantine(name, this.files.pathFor(name));
  }
}

/** A decoded text file as a store gives it: values with their expiry times apart. */
function contentsOf(decoded: DecodedEntries | undefined): StoredContents | undefined {
  if (decoded === undefined) return undefined;
  const entries: StoredEntry[] = [];
  for (const [key, saved] of decoded) {
    if (typeof saved === 'object' && saved !== null && isExpiryEnvelope(saved)) entries.push({ key, value: saved.value, expiresAt: saved[EXPIRES_FIELD] });
    else entries.push({ key, value: saved });
  }
  return { entries, generation: decoded.meta.generation };
}

/** Entries as the text formats write them: values with an expiry time wrapped as every store saves them. */
function collect(pairs: unknown[], sets: readonly StoredEntry[]): void {
  for (const { key, value, expiresAt } of sets) pairs.push(key, expiresAt === undefined ? value : wrapExpiring(value, expiresAt));
}

/** A snapshot of collected pairs, for the text store's writer. */
function pairSnapshot(pairs: readonly unknown[], generation: string): EntrySnapshot {
  let next = 0;
  return {
    size: pairs.length / 2,
    generation,
    fill(out: unknown[], max: number): number {
      let n = 0;
      while (n < max && next < pairs.length) {
        out.push(pairs[next], pairs[next + 1]);
        next += 2;
        n++;
      }
      return n;
    },
  };
}
