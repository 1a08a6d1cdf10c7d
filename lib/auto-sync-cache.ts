import { openCache } from './cache-options';
import { registerCacheKind } from './cache-kinds';
import { declareOptions } from './options';
import { EditWindow, type TimeCheck } from './edit-window';
import { monotonicNow, steadyClock } from './monotonic-clock';
import { PersistentCache, type PersistentCacheOptions } from './persistent-cache';
import type { CacheFileStore } from './store/file-store';

/** Options of an {@link AutoSyncCache}. */
export interface AutoSyncCacheOptions<K, V> extends PersistentCacheOptions<K, V> {
  /**
   * Bands of the save rule, shortest first.
   * @default [{ seconds: 60, count: 10000 }, { seconds: 300, count: 10 }, { seconds: 900, count: 1 }]
   */
  readonly timeChecks?: readonly TimeCheck[];
  /** Width of one bucket of the edit window. @default 15 */
  readonly bucketSeconds?: number;
  /**
   * The time source of the autosync windows, in ms: a monotonic clock, of which only the
   * differences count (a reading that goes back is taken as no time passing). Given, it is also
   * the cache's expiry clock, as for every cache (there, ms since the epoch): a test's fake clock
   * drives both. Not given, the windows read `performance.now()`, so a step of the wall clock
   * (NTP, a restored VM, a resume) cannot stretch or skip them, and expiry reads `Date.now()`.
   * @default performance.now, for the windows
   */
  readonly clock?: () => number;
}

/**
 * A PersistentCache that saves itself when edits pile up: "10,000 edits within 60 s, or 10
 * edits between 60 and 300 s ago, or 1 edit between 300 and 900 s ago" by default. Saves run
 * in the background, one at a time, coalesced; a dirty cache is re-checked on an unref'd timer,
 * so a lone edit is saved once its band is reached; failures go to the manager's `error` event
 * and the edits stay dirty until a later save succeeds.
 *
 * Edits are not timed one by one: `set` only counts. The clock is read when a batch of edits
 * begins, when the shortest band could be reached, and on each timer tick (once a bucket), so an
 * edit's time is known to within one bucket, the window's own resolution. The windows are spans
 * waited out, so they run on the monotonic clock (`performance.now()`, or the `clock` option):
 * a wall-clock step neither delays a save nor skips it. An edit a late check finds past every
 * band (the process was stopped or blocked longer than the longest band) is saved at once.
 *
 * @example
 * const cache = await AutoSyncCache.open('events', { timeChecks: [{ seconds: 5, count: 1 }] });
 * cache.set('a', 1); // saved within about 5 s, with no further call
 */
export class AutoSyncCache<K = unknown, V = unknown> extends PersistentCache<K, V> {
  /** The edit window; pure, so tests can inspect it. */
  readonly window: EditWindow;
  readonly #clock: () => number;
  readonly #tickMs: number;
  #flushed = 0; // edit count already recorded in the window
  #batchStart: number | undefined; // clock time of the first edit not yet recorded
  #timer: NodeJS.Timeout | undefined;
  #savePending = false;
  #retryPending = false; // a background save failed: the next tick retries, window or not
  #disposed = false;

  /** Constructs the cache and runs `loadOrBuild()`. */
  static override open<K = unknown, V = unknown>(
    name: string,
    options?: AutoSyncCacheOptions<K, V>,
  ): Promise<AutoSyncCache<K, V>> {
    return openCache(this, name, options, () => new this<K, V>(name, options));
  }

  constructor(name: string, options: AutoSyncCacheOptions<K, V> = {}, store?: CacheFileStore) {
    super(name, options, store);
    const { timeChecks, bucketSeconds = 15, clock = monotonicNow } = options;
    if (typeof clock !== 'function') {
      throw new TypeError(`${name}: clock: expected a function, got ${String(clock)} (${typeof clock})`);
    }
    this.window = new EditWindow({ timeChecks, bucketSeconds });
    this.#clock = steadyClock(clock);
    this.#tickMs = bucketSeconds * 1000;
    this.#flushed = this.editCount;
    this.editTrigger = this.editCount + 1;
    if (this.dirtyEdits > 0) this.#recordDirtyAsNow();
  }

  protected override editThresholdReached(): void {
    if (this.#disposed) {
      this.editTrigger = Number.POSITIVE_INFINITY;
      return;
    }
    const now = this.#clock();
    if (this.#batchStart === undefined) {
      // First edit of a batch: note when it began; earlier edits may have aged into a band.
      this.#batchStart = now;
      this.#armTimer();
      if (this.#due(now)) {
        this.#flush(now);
        this.#saveInBackground();
        return;
      }
      this.editTrigger = this.#flushed + this.window.editsToTrigger();
      if (this.editCount < this.editTrigger) return;
    }
    this.#flush(now);
    if (this.#due(now)) this.#saveInBackground();
  }

  /** Whether the window calls for a save now, or holds unsaved edits a late check let skip it. */
  #due(now: number): boolean {
    return this.window.shouldSave(now) || (this.window.overdue > 0 && this.dirtyEdits > 0);
  }

  /** Records the edits counted since the last flush: the first at its batch start, the rest now. */
  #flush(now: number): void {
    const pending = this.editCount - this.#flushed;
    if (pending > 0) {
      this.window.shift(now);
      const first = this.#batchStart ?? now;
      this.window.record(first, 1);
      if (pending > 1) this.window.record(now, pending - 1);
    }
    this.#flushed = this.editCount;
    this.#batchStart = undefined;
    // While a background save is pending, edits only count; its end re-arms the check.
    this.editTrigger = this.#savePending ? Number.POSITIVE_INFINITY : this.#flushed + 1;
  }

  #tick(): void {
    if (this.#disposed) return this.#stopTimer();
    const now = this.#clock();
    this.#flush(now);
    if (this.dirtyEdits === 0 && this.window.isEmpty) return this.#stopTimer();
    // A failed save is retried even if its edits have aged out of the window since.
    if (this.#due(now) || (this.#retryPending && this.dirtyEdits > 0)) this.#saveInBackground();
  }

  #saveInBackground(): void {
    if (this.#savePending) return;
    this.#savePending = true;
    this.editTrigger = Number.POSITIVE_INFINITY;
    this.save().then(
      () => {
        this.#savePending = false;
        this.#retryPending = false;
        if (!this.#disposed) this.editTrigger = this.#flushed + 1;
      },
      (err: unknown) => {
        // Reported, never thrown. The edits stay dirty and the window keeps its counts; the
        // next timer tick (once a bucket) re-arms the check and retries, so a failing disk is
        // not hammered on every edit.
        this.#savePending = false;
        this.#retryPending = true;
        this.#armTimer();
        this.manager.reportError(err);
      },
    );
  }

  protected override stateSettled(event: 'load' | 'save' | 'build' | 'delete'): void {
    super.stateSettled(event);
    this.window.reset();
    this.#flushed = this.editCount;
    this.#batchStart = undefined;
    this.editTrigger = this.editCount + 1;
    // Edits made while a save ran are still unsaved: they go back into the window.
    if (event === 'save' && this.dirtyEdits > 0) this.#recordDirtyAsNow();
    else if (this.dirtyEdits === 0) this.#stopTimer();
  }

  #recordDirtyAsNow(): void {
    if (this.#disposed) return;
    const now = this.#clock();
    this.window.shift(now);
    this.window.record(now, this.dirtyEdits);
    this.#armTimer();
  }

  #armTimer(): void {
    if (this.#timer !== undefined || this.#disposed) return;
    this.#timer = setInterval(() => this.#tick(), this.#tickMs);
    this.#timer.unref();
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Whether a re-check timer is pending (for tests and stats). */
  get timerActive(): boolean {
    return this.#timer !== undefined;
  }

  /** Stops the timer for good; the manager calls this on close. @internal */
  override dispose(): void {
    super.dispose();
    this.#disposed = true;
    this.#stopTimer();
    this.editTrigger = Number.POSITIVE_INFINITY;
  }
}

declareOptions(AutoSyncCache, ['timeChecks', 'bucketSeconds', 'clock']);
registerCacheKind('AutoSyncCache', AutoSyncCache);
