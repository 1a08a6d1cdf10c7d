// proper-lockfile is loaded by the first lock, not with the package: on load it installs
// signal-exit 3's handlers for SIGINT, SIGTERM and SIGHUP (to release its locks), which change
// how a process that never writes a cache ends.
type LockFile = typeof import('proper-lockfile');
let loaded: LockFile | undefined;
function lockfile(): LockFile {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (loaded ??= require('proper-lockfile') as LockFile);
}

// A lock is held only while one process writes (a manifest merge, a journal append, a rewrite
// of a base). A holder refreshes its lock's mtime every stale/2; one that died leaves a lock
// whose mtime stops moving, taken over once it is `staleMs` old. Cache files use a generous one,
// because a holder whose event loop is busy (a large synchronous refill, a GC) cannot refresh it
// meanwhile; the manifest, held for milliseconds, a short one.
export const CACHE_LOCK_STALE_MS = 10_000;
export const MANIFEST_LOCK_STALE_MS = 2_000;

// Holders in this process, by path: they queue here, so they never take each other's lock for a
// stale one while the event loop was busy.
const inProcess = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` holding the lock of `path` (a `<path>.lock` directory, proper-lockfile), across
 * processes and within this one. Waits up to `waitMs` for a holder in another process.
 * @throws the lock's error (code ELOCKED) when it stays held longer than that; ECOMPROMISED
 *   when another process took the lock over while `fn` ran (the caller's write may have raced
 *   with theirs, so it must count as failed and be done again)
 */
export function withFileLock<T>(path: string, waitMs: number, staleMs: number, fn: () => Promise<T> | T): Promise<T> {
  const before = inProcess.get(path) ?? Promise.resolve();
  const run = before.then(
    () => holding(path, waitMs, staleMs, fn),
    () => holding(path, waitMs, staleMs, fn),
  );
  const settled = run.catch(() => undefined);
  inProcess.set(path, settled);
  void settled.then(() => {
    if (inProcess.get(path) === settled) inProcess.delete(path);
  });
  return run;
}

async function holding<T>(path: string, waitMs: number, staleMs: number, fn: () => Promise<T> | T): Promise<T> {
  let compromised: Error | undefined;
  const release = await lockfile().lock(path, {
    realpath: false,
    stale: staleMs,
    retries: { retries: Math.ceil(waitMs / 100), minTimeout: 5, maxTimeout: 100, factor: 1.5 },
    // proper-lockfile throws from a timer by default, which would end the process.
    onCompromised: (err) => {
      compromised = err;
    },
  });
  try {
    const result = await fn();
    if (compromised !== undefined) throw compromised;
    return result;
  } finally {
    await release().catch(() => undefined);
  }
}

/** Whether this process holds (or waits for) the lock of `path` through {@link withFileLock}. */
export function lockedHere(path: string): boolean {
  return inProcess.has(path);
}

/**
 * The synchronous twin, for process exit (proper-lockfile's sync API takes no retries, so this
 * waits itself). Gives up after `waitMs` (at once when this process holds the lock: its holder
 * will never run again) and runs `fn` without the lock: at exit, a write that may race beats
 * losing what this process holds.
 */
export function withFileLockSync<T>(path: string, waitMs: number, staleMs: number, fn: () => T): T {
  const until = Date.now() + (lockedHere(path) ? 0 : waitMs);
  let release: (() => void) | undefined;
  for (;;) {
    try {
      release = lockfile().lockSync(path, { realpath: false, stale: staleMs, onCompromised: () => undefined });
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
