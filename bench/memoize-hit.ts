import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CacheManager, memoize } from '../lib';
import { median } from './stats';

export interface MemoizeHitFigures {
  readonly plainNs: number;
  readonly memoizeeNs: number;
  readonly depcacheNs: number;
  /** A hit with one object argument: a Map keyed by JSON.stringify of it, and depcache. */
  readonly jsonMapObjectNs: number;
  readonly depcacheObjectNs: number;
}

interface Query {
  id: number;
  region: string;
  tags: string[];
}

/** ns per call of a cache hit with small arguments: a plain call, memoizee (memory only), depcache. */
export function memoizeHit(runs: number): MemoizeHitFigures {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const memoizee = require('memoizee') as (fn: (a: number, b: string) => number) => (a: number, b: string) => number;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-memo-'));
  const manager = new CacheManager('memo-bench', { baseDirectory: dir });
  const work = (a: number, b: string): number => a * 31 + b.length;
  const subjects: Array<[string, (a: number, b: string) => number]> = [
    ['plain', work],
    ['memoizee', memoizee(work)],
    ['depcache', memoize(work, { manager })],
  ];
  const calls = 200_000;
  const keys = 100; // a small working set: every call after the first round is a hit
  const times = subjects.map(() => [] as number[]);
  for (let run = -1; run < runs; run++) {
    subjects.forEach(([, f], s) => {
      let sum = 0;
      const start = performance.now();
      for (let i = 0; i < calls; i++) sum += f(i % keys, 'ab');
      const ns = ((performance.now() - start) * 1e6) / calls;
      if (sum === 0) throw new Error('unreachable');
      if (run >= 0) (times[s] as number[]).push(ns);
    });
  }
  const [plainNs, memoizeeNs, depcacheNs] = times.map(median) as [number, number, number];

  // One object argument: the floor is what people write by hand, a Map keyed by JSON.stringify.
  const query = (q: Query): number => q.id * 31 + q.region.length + q.tags.length;
  const byJson = new Map<string, number>();
  const jsonMap = (q: Query): number => {
    const key = JSON.stringify(q);
    let value = byJson.get(key);
    if (value === undefined) byJson.set(key, (value = query(q)));
    return value;
  };
  const queries = Array.from({ length: keys }, (_, i) => ({ id: i, region: 'eu-west', tags: ['a', 'b'] }));
  const objectSubjects: Array<(q: Query) => number> = [jsonMap, memoize(query, { manager })];
  const objectTimes = objectSubjects.map(() => [] as number[]);
  for (let run = -1; run < runs; run++) {
    objectSubjects.forEach((f, s) => {
      let sum = 0;
      const start = performance.now();
      for (let i = 0; i < calls; i++) sum += f(queries[i % keys] as Query);
      const ns = ((performance.now() - start) * 1e6) / calls;
      if (sum === 0) throw new Error('unreachable');
      if (run >= 0) (objectTimes[s] as number[]).push(ns);
    });
  }
  const [jsonMapObjectNs, depcacheObjectNs] = objectTimes.map(median) as [number, number];
  void manager.close().then(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { plainNs, memoizeeNs, depcacheNs, jsonMapObjectNs, depcacheObjectNs };
}
