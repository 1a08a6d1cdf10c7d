import * as lockfile from 'proper-lockfile';

// A lock is held only while one process writes (a manifest merge, a journal append, a rewrite
// of a base); a holder that died leaves a lock whose mtime stops moving, and it is taken over
// once it is this old (proper-lockfile's least). A live holder refreshes it every second.
const STALE_MS = 2_000;

/**
 * Runs `fn` holding the lock of `path` (a `<path>.lock` directory, proper-lockfile), across
 * processes and within this one. Waits up to `waitMs` for another holder.
 * @throws the lock's error (code ELOCKED) when it stays held longer than that
 */
export async function withFileLock<T>(path: string, waitMs: number, fn: () => Promise<T> | T): Promise<T> {
  const release = await lockfile.lock(path, {
    realpath: false,
    stale: STALE_MS,
    retries: { retries: Math.ceil(waitMs / 100), minTimeout: 5, maxTimeout: 100, factor: 1.5 },
  });
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

/**
 * The synchronous twin, for process exit (proper-lockfile's sync API takes no retries, so this
 * waits itself). Gives up after `waitMs` and runs `fn` without the lock: at exit, a write that
 * may race beats losing what this process holds.
 */
export function withFileLockSync<T>(path: string, waitMs: number, fn: () => T): T {
  const until = Date.now() + waitMs;
  let release: (() => void) | undefined;
  for (;;) {
    try {
      release = lockfile.lockSync(path, { realpath: false, stale: STALE_MS });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED' || Date.now() > until) break;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
  try {
    return fn();
  } finally {
    try {
      release?.();
    } catch {
      // released already (a stale takeover); nothing to undo
    }
  }
}
