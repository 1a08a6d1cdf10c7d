// Progress of long work (loads, saves, compactions), as `progress` events: pure, with an
// injected clock, so its rules are tested without waiting.

/** Work shorter than this sends no progress at all (environment: DEPCACHE_PROGRESS_AFTER_MS). */
export const PROGRESS_AFTER_MS = afterMsFromEnvironment();
/** At most one event per this interval (the last one, at `total`, always goes). */
export const PROGRESS_EVERY_MS = 250;

/** What long work reports as it goes, in entries. */
export interface ProgressReporter {
  /** `done` of `total` entries are done (never decreasing). */
  update(done: number): void;
  /** The work is over: sends the final event at `total` if any was sent. */
  finish(): void;
}

/**
 * Reports `done` of `total` through `emit`, from `afterMs` after it started, at most once per
 * `everyMs`, and always ends at `total` when it reported anything.
 */
export class ProgressThrottle implements ProgressReporter {
  readonly #started: number;
  #last = Number.NEGATIVE_INFINITY;
  #sent = -1;
  #done = 0;

  constructor(
    readonly total: number,
    private readonly emit: (done: number, total: number) => void,
    private readonly clock: () => number = () => performance.now(),
    private readonly afterMs = PROGRESS_AFTER_MS,
    private readonly everyMs = PROGRESS_EVERY_MS,
  ) {
    this.#started = clock();
  }

  update(done: number): void {
    this.#done = Math.min(Math.max(done, this.#done), this.total);
    const now = this.clock();
    if (now - this.#started < this.afterMs || now - this.#last < this.everyMs || this.#done === this.#sent) return;
    this.#last = now;
    this.#send();
  }

  finish(): void {
    this.#done = this.total;
    if (this.#sent >= 0 && this.#sent !== this.total) this.#send();
  }

  #send(): void {
    this.#sent = this.#done;
    this.emit(this.#done, this.total);
  }
}

/** Long work a store does for a cache. */
export type ProgressOperation = 'load' | 'save' | 'compact';

/** Makes the reporter for one piece of work, or undefined when nobody listens. */
export type ProgressSource = (cache: string, op: ProgressOperation, total: number) => ProgressReporter | undefined;

function afterMsFromEnvironment(): number {
  const set = Number(process.env.DEPCACHE_PROGRESS_AFTER_MS);
  return process.env.DEPCACHE_PROGRESS_AFTER_MS !== undefined && Number.isFinite(set) && set >= 0 ? set : 1000;
}
