import { median } from './stats';
import { runWorker } from './worker-process';

/** ns per operation of get and set over a map of `n` entries, for one subject. */
export interface Throughput {
  readonly subject: string;
  readonly getNs: number;
  readonly setNs: number;
  /** Each round's figures, in round order (the medians above are of these). */
  readonly rounds: ReadonlyArray<{ readonly getNs: number; readonly setNs: number }>;
}

export const SUBJECTS = ['Map', 'PersistentCache', 'AutoSyncCache, no save', 'AutoSyncCache'] as const;

/** Caches with expiry or a bound, each beside lru-cache configured the same way. */
export const EXPIRY_PAIRS = [
  ['ttl', 'lru-cache, ttl', ['PersistentCache, ttlMs', 'NonPersistentCache, ttlMs']],
  ['max', 'lru-cache, max', ['PersistentCache, maxEntries', 'NonPersistentCache, maxEntries']],
  ['ttl + max', 'lru-cache, both', ['PersistentCache, both', 'NonPersistentCache, both']],
] as const;

/** Runs every subject `rounds` times, interleaved, each in a fresh process; medians per subject. */
export function throughput(entries: number, rounds: number, runsPerProcess = 9, subjects: readonly string[] = SUBJECTS): Throughput[] {
  const gets = new Map<string, number[]>(subjects.map((s) => [s, []]));
  const sets = new Map<string, number[]>(subjects.map((s) => [s, []]));
  for (let round = 0; round < rounds; round++) {
    for (const subject of subjects) {
      const out = runWorker('throughput-worker', [subject, String(entries), String(runsPerProcess)]);
      const r = JSON.parse(out) as { getNs: number; setNs: number };
      gets.get(subject)?.push(r.getNs);
      sets.get(subject)?.push(r.setNs);
    }
  }
  return subjects.map((subject) => ({
    subject,
    getNs: median(gets.get(subject) as number[]),
    setNs: median(sets.get(subject) as number[]),
    rounds: (gets.get(subject) as number[]).map((getNs, i) => ({ getNs, setNs: (sets.get(subject) as number[])[i] as number })),
  }));
}

/** Heap bytes per entry of `subject` ('Map' or 'PersistentCache'), measured in a fresh process. */
export function heapPerEntry(subject: 'Map' | 'PersistentCache', entries: number): number {
  const out = runWorker('throughput-worker', [`heap:${subject}`, String(entries)]);
  return (JSON.parse(out) as { bytes: number }).bytes;
}
