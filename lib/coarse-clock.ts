/*
 * The wall clock read at most once per job: the first read in a job calls Date.now() and a
 * microtask forgets it when the job's synchronous work is done. A loop of a million cache reads
 * then reads the clock once, not a million times (Date.now() costs about as much as the read
 * itself). Time does not move within one synchronous stretch, as in lru-cache's ttlResolution.
 */

let now = 0;
let valid = false;
const expire = (): void => {
  valid = false;
};

/** Date.now(), as of the start of the current synchronous stretch. */
export function coarseNow(): number {
  if (!valid) {
    now = Date.now();
    valid = true;
    queueMicrotask(expire);
  }
  return now;
}
