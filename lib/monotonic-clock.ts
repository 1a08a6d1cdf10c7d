/*
 * Clocks for durations. The wall clock (Date.now) can step: NTP corrects it, a restored VM
 * jumps it back, a resume after suspend jumps it forward. A duration measured on it then
 * stretches or vanishes. performance.now() is monotonic: it counts from the process start and
 * never steps, whatever the wall clock does. Instants that are written down (expiry times, a
 * save's time) stay on the wall clock; spans that are only waited out (autosync windows) use this.
 */

/** Milliseconds on the monotonic clock (`performance.now()`, read at each call so tests can fake it). */
export function monotonicNow(): number {
  return performance.now();
}

/**
 * A reader of `clock` that never goes back: a backward step of the source is absorbed (that
 * reading repeats the last one) and later readings move on by the source's own differences. A
 * forward step cannot be told from time passing, so it passes through.
 *
 * @example
 * const steady = steadyClock(source); // source reads 100, then 40, then 50
 * steady(); steady(); steady();       // 100, 100, 110
 */
export function steadyClock(clock: () => number): () => number {
  let last = Number.NaN;
  let offset = 0;
  return () => {
    const raw = clock();
    if (raw < last) offset += last - raw;
    last = raw;
    return raw + offset;
  };
}
