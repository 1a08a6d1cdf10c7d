/** Percentiles of recent durations, in ms. */
export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  /** How many samples they are computed from (the most recent, at most 1024). */
  readonly samples: number;
}

/** The last 1024 samples in a ring: O(1) to add, sorted only when percentiles are asked for. */
export class Samples {
  readonly #ring = new Float64Array(1024);
  #count = 0;

  add(value: number): void {
    this.#ring[this.#count % this.#ring.length] = value;
    this.#count++;
  }

  percentiles(): Percentiles {
    const n = Math.min(this.#count, this.#ring.length);
    if (n === 0) return { p50: 0, p95: 0, p99: 0, max: 0, samples: 0 };
    const sorted = this.#ring.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))] as number;
    return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[n - 1] as number, samples: n };
  }
}
