/** One band of the save rule: `count` edits within its span of `seconds`. */
export interface TimeCheck {
  readonly seconds: number;
  readonly count: number;
}

/** Options of an {@link EditWindow}. */
export interface EditWindowOptions {
  /**
   * The bands, shortest first (sorted if not). Each counts the edits in its own band, beyond the
   * span of the shorter one before it.
   * @default [{ seconds: 60, count: 10000 }, { seconds: 300, count: 10 }, { seconds: 900, count: 1 }]
   */
  readonly timeChecks?: readonly TimeCheck[];
  /** Width of one bucket. @default 15 */
  readonly bucketSeconds?: number;
}

/** CacheMan's thresholds: 10,000 edits in 60 s, 10 between 60 and 300 s ago, 1 between 300 and 900 s. */
export const DEFAULT_TIME_CHECKS: readonly TimeCheck[] = Object.freeze([
  Object.freeze({ seconds: 60, count: 10000 }),
  Object.freeze({ seconds: 300, count: 10 }),
  Object.freeze({ seconds: 900, count: 1 }),
]);

/**
 * Edit counts in time buckets, and CacheMan's rule for when they call for a save. Pure: no
 * timers, no clock; every time is an argument (ms). Buckets sit on a fixed grid of
 * `bucketSeconds`, so the newest bucket is the grid cell holding the time of the last shift.
 *
 * @example
 * const w = new EditWindow({ timeChecks: [{ seconds: 1, count: 2 }], bucketSeconds: 1 });
 * w.shift(now); w.record(now); w.record(now);
 * w.shouldSave(now); // true: 2 edits within 1 s
 */
export class EditWindow {
  readonly timeChecks: readonly TimeCheck[];
  readonly bucketSeconds: number;
  /** How many buckets the window holds: the longest band divided by the bucket width. */
  readonly bucketCount: number;
  readonly #bucketMs: number;
  // #bandEnds[j]: how many of the newest buckets band j and the shorter bands cover together.
  readonly #bandEnds: number[];
  // Ring buffer of counts; #head is the index of the oldest bucket.
  readonly #counts: number[];
  #head = 0;
  #newest = Number.NEGATIVE_INFINITY; // grid cell of the newest bucket
  #shiftedAt = Number.NEGATIVE_INFINITY;
  #overdue = 0;
  // Age (in buckets) where the longest band begins; edits younger than it were never judged by it.
  readonly #lastBandStart: number;

  constructor(options: EditWindowOptions = {}) {
    const { timeChecks = DEFAULT_TIME_CHECKS, bucketSeconds = 15 } = options;
    if (!(typeof bucketSeconds === 'number' && bucketSeconds > 0 && Number.isFinite(bucketSeconds))) {
      throw new TypeError(
        `bucketSeconds: expected a positive number, got ${String(bucketSeconds)} (${typeof bucketSeconds})`,
      );
    }
    if (!Array.isArray(timeChecks) || timeChecks.length === 0) {
      throw new TypeError('timeChecks: expected a non-empty array of { seconds, count }');
    }
    for (const check of timeChecks as unknown[]) assertTimeCheck(check);
    this.timeChecks = Object.freeze([...timeChecks].sort((a, b) => a.seconds - b.seconds));
    this.bucketSeconds = bucketSeconds;
    this.#bucketMs = bucketSeconds * 1000;
    this.#bandEnds = this.timeChecks.map((c) => Math.ceil(c.seconds / bucketSeconds - 1e-9));
    this.bucketCount = this.#bandEnds[this.#bandEnds.length - 1] as number;
    this.#lastBandStart = this.#bandEnds.length > 1 ? (this.#bandEnds[this.#bandEnds.length - 2] as number) : 0;
    this.#counts = new Array<number>(this.bucketCount).fill(0);
  }

  /** One count per bucket, oldest first, newest last. */
  get counts(): number[] {
    const out = new Array<number>(this.bucketCount);
    for (let i = 0; i < this.bucketCount; i++) out[i] = this.#at(i);
    return out;
  }

  /** Moves the window's end to `now`, dropping buckets that fall out. Never moves it back. */
  shift(now: number): void {
    const cell = Math.floor(now / this.#bucketMs);
    const steps = cell - this.#newest;
    if (steps > 0) {
      const n = this.bucketCount;
      for (let i = 0; i < Math.min(steps, n); i++) {
        const index = (this.#head + i) % n;
        // Dropped from age n - 1 - i: skipped the longest band if it had not reached it yet.
        if (n - 1 - i < this.#lastBandStart) this.#overdue += this.#counts[index] as number;
        this.#counts[index] = 0;
      }
      if (steps < n) this.#head = (this.#head + steps) % n;
      this.#newest = cell;
    }
    if (now > this.#shiftedAt) this.#shiftedAt = now;
  }

  /**
   * Adds `count` edits made at time `at` to its bucket, relative to the window as the last
   * shift left it. An edit after the window's end is ignored; one before its start is counted
   * in {@link overdue} only. Does not shift.
   */
  record(at: number, count = 1): void {
    if (!(at <= this.#shiftedAt)) return;
    const age = this.#newest - Math.floor(at / this.#bucketMs);
    if (age < 0) return;
    if (age >= this.bucketCount) {
      this.#overdue += count;
      return;
    }
    const index = (this.#head + this.bucketCount - 1 - age) % this.bucketCount;
    this.#counts[index] = (this.#counts[index] as number) + count;
  }

  /**
   * Shifts to `now`, then applies the band rule: true when some band holds at least its count,
   * each band counting only the buckets beyond the shorter bands.
   */
  shouldSave(now: number): boolean {
    this.shift(now);
    let age = 0;
    for (let band = 0; band < this.#bandEnds.length; band++) {
      const end = this.#bandEnds[band] as number;
      const needed = (this.timeChecks[band] as TimeCheck).count;
      let sum = 0;
      for (; age < end; age++) {
        sum += this.#at(this.bucketCount - 1 - age);
        if (sum >= needed) return true;
      }
    }
    return false;
  }

  /**
   * How many more edits in the newest bucket would make the shortest band call for a save, as
   * of the last shift. At least 1.
   */
  editsToTrigger(): number {
    const end = this.#bandEnds[0] as number;
    let sum = 0;
    for (let age = 0; age < end; age++) sum += this.#at(this.bucketCount - 1 - age);
    return Math.max(1, (this.timeChecks[0] as TimeCheck).count - sum);
  }

  /** Whether any bucket holds an edit. */
  get isEmpty(): boolean {
    return this.#counts.every((c) => c === 0);
  }

  /**
   * How many edits left the window since the last reset without ever being judged by its
   * longest band: a shift carried them past it in one go, or they were recorded older than the
   * window. Checked once a bucket, no edit skips a band, so this stays 0; it counts the edits a
   * late check missed (a stopped or blocked process, a clock that jumped), which the rule alone
   * would then never save.
   */
  get overdue(): number {
    return this.#overdue;
  }

  /** Zeroes every bucket and {@link overdue}; the window's end stays where it is. */
  reset(): void {
    this.#counts.fill(0);
    this.#overdue = 0;
  }

  #at(position: number): number {
    return this.#counts[(this.#head + position) % this.bucketCount] as number;
  }
}

function assertTimeCheck(check: unknown): asserts check is TimeCheck {
  const c = check as Partial<TimeCheck> | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    !(typeof c.seconds === 'number' && c.seconds > 0 && Number.isFinite(c.seconds)) ||
    !(Number.isInteger(c.count) && (c.count as number) > 0)
  ) {
    throw new TypeError(
      `timeChecks: expected { seconds: positive number, count: positive integer }, got ${JSON.stringify(check)}`,
    );
  }
}
