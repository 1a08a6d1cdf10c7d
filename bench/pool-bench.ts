import { Pool } from '../lib';
import { median } from './stats';
import { runWorker } from './worker-process';

/** The least a pool can do: a stack of idle objects and a FIFO of waiters. */
class MinimalStack<T> {
  readonly #idle: T[];
  readonly #waiters: Array<(value: T) => void> = [];
  #head = 0;
  constructor(items: T[]) {
    this.#idle = items;
  }
  acquire(): Promise<T> {
    const item = this.#idle.pop();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  release(item: T): void {
    if (this.#head < this.#waiters.length) (this.#waiters[this.#head++] as (v: T) => void)(item);
    else this.#idle.push(item);
  }
}

interface Subject {
  acquire(): Promise<object>;
  release(o: object): void;
  close(): Promise<void>;
}

async function makeSubject(name: string, size: number): Promise<Subject> {
  let n = 0;
  const create = async () => ({ id: ++n });
  if (name === 'minimal stack') {
    const s = new MinimalStack<object>(Array.from({ length: size }, (_, i) => ({ id: i })));
    return { acquire: () => s.acquire(), release: (o) => s.release(o), close: async () => undefined };
  }
  if (name === 'depcache Pool') {
    const p = new Pool<object>({ create, maxSize: size, minSize: size });
    return { acquire: () => p.acquire(), release: (o) => p.release(o), close: () => p.close() };
  }
  if (name === 'generic-pool') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const gp = require('generic-pool') as typeof import('generic-pool');
    const p = gp.createPool<object>({ create, destroy: async () => undefined }, { max: size, min: size });
    return { acquire: () => p.acquire(), release: (o) => void p.release(o), close: async () => p.drain().then(() => p.clear()) };
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Pool: TarnPool } = require('tarn') as typeof import('tarn');
  const p = new TarnPool<object>({ create, destroy: () => undefined, min: size, max: size });
  return {
    acquire: () => p.acquire().promise,
    release: (o) => void p.release(o),
    close: async () => {
      await p.destroy();
    },
  };
}

export const POOL_SUBJECTS = ['minimal stack', 'depcache Pool', 'generic-pool', 'tarn'] as const;

export interface PoolFigures {
  /** ns per uncontended acquire + release, per subject. */
  readonly uncontendedNs: Record<string, number>;
  /** ns per acquire + release with 20,000 waiters on 500 objects, per subject. */
  readonly contendedNs: Record<string, number>;
}

/** Measures one subject, alone in this process (run by poolBench through pool-worker.ts). */
export async function measureSubject(name: string, runs: number): Promise<{ uncontendedNs: number; contendedNs: number }> {
  const cycles = 100_000;
  const tasks = 20_000;
  const u: number[] = [];
  const c: number[] = [];
  for (let run = -1; run < runs; run++) {
    let subject = await makeSubject(name, 1);
    subject.release(await subject.acquire()); // minSize creates are asynchronous
    let start = performance.now();
    for (let i = 0; i < cycles; i++) subject.release(await subject.acquire());
    const uncontended = ((performance.now() - start) * 1e6) / cycles;
    await subject.close();

    subject = await makeSubject(name, 500);
    subject.release(await subject.acquire());
    start = performance.now();
    await Promise.all(
      Array.from({ length: tasks }, async () => {
        const o = await subject.acquire();
        await null; // hold it across a turn, as real work would
        subject.release(o);
      }),
    );
    const contended = ((performance.now() - start) * 1e6) / tasks;
    await subject.close();
    if (run >= 0) {
      u.push(uncontended);
      c.push(contended);
    }
  }
  return { uncontendedNs: median(u), contendedNs: median(c) };
}

/**
 * Every subject in its own process, rounds interleaved: in one process the shared loop's call
 * sites see four pool classes and slow each by a different amount.
 */
export function poolBench(rounds: number, runsPerProcess = 3): PoolFigures {
  const u: Record<string, number[]> = {};
  const c: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const name of POOL_SUBJECTS) {
      const out = runWorker('pool-worker', [name, String(runsPerProcess)], []);
      const r = JSON.parse(out) as { uncontendedNs: number; contendedNs: number };
      (u[name] ??= []).push(r.uncontendedNs);
      (c[name] ??= []).push(r.contendedNs);
    }
  }
  const med = (r: Record<string, number[]>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)]));
  return { uncontendedNs: med(u), contendedNs: med(c) };
}
