import { errorMessage } from './errors';

/** Something with dirty state to write synchronously before the process goes. */
export interface ExitFlushable {
  /** Writes what it can; returns the failures (each naming its cache), never throws for one. */
  flushSync(): unknown[];
}

const targets = new Set<ExitFlushable>();
let installed = false;

/**
 * Flushes `target` synchronously on normal exit, `process.exit()`, and SIGINT/SIGTERM/SIGHUP
 * (signal-exit re-raises the signal afterwards, so the exit status is what it would have been).
 * Only synchronous work can run there, which is why custom async savers are not called at exit.
 * A failed flush is said on stderr, naming each cache whose edits are lost and why, and an exit
 * status that would have been 0 becomes 1: a script must not look successful after losing data.
 */
export function flushAtExit(target: ExitFlushable): void {
  targets.add(target);
  if (installed) return;
  installed = true;
  // Loaded here, not with the package: until a cache has something to flush, nothing of
  // depcache listens for signals or for the exit.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { onExit } = require('signal-exit') as typeof import('signal-exit');
  onExit((code) => {
    const failures: unknown[] = [];
    for (const t of targets) {
      try {
        failures.push(...t.flushSync());
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length === 0) return;
    try {
      // The process is going away: stderr is the only place left to say so.
      for (const err of failures) process.stderr.write(`depcache: unsaved edits lost at exit: ${errorMessage(err)}\n`);
    } catch {
      // nothing more to do
    }
    // Read after the 'exit' listeners by Node (and by signal-exit's reallyExit hook).
    if (code === 0 || code === null) process.exitCode = 1;
  });
}

/** Stops flushing `target` at exit (after `close()`). */
export function forgetAtExit(target: ExitFlushable): void {
  targets.delete(target);
}

/** Something that saves asynchronously what cannot be written synchronously (Redis caches). */
export interface ExitSavable {
  /** Whether anything would be saved. */
  hasUnsavedShared(): boolean;
  /** Saves it; resolves the failures (each naming its cache), never rejects. */
  saveShared(): Promise<unknown[]>;
}

const asyncTargets = new Set<ExitSavable>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let asyncInstalled = false;
let triedAtEnd = false;
let signalled = false;

/**
 * Saves `target` asynchronously when the event loop empties (`beforeExit`, once: what still
 * fails is left to the synchronous exit flush, which spills it) and on SIGINT, SIGTERM and
 * SIGHUP, before the signal ends the process as it would have. Failures are said on stderr, and
 * an exit status that would have been 0 becomes 1.
 */
export function saveAtExit(target: ExitSavable): void {
  asyncTargets.add(target);
  if (asyncInstalled) return;
  asyncInstalled = true;
  process.on('beforeExit', () => {
    if (triedAtEnd || ![...asyncTargets].some((t) => t.hasUnsavedShared())) return;
    triedAtEnd = true;
    void saveAll();
  });
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

/** Stops saving `target` at exit (after `close()`). */
export function forgetSaveAtExit(target: ExitSavable): void {
  asyncTargets.delete(target);
}

async function saveAll(): Promise<void> {
  // The saves' connections do not hold the event loop open by themselves: this does, until
  // they are done.
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    const failures = (await Promise.all([...asyncTargets].map((t) => t.saveShared()))).flat();
    if (failures.length === 0) return;
    for (const err of failures) process.stderr.write(`depcache: a save at exit failed: ${errorMessage(err)}\n`);
    if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = 1;
  } finally {
    clearInterval(keepAlive);
  }
}

function onSignal(signal: NodeJS.Signals): void {
  if (signalled) return;
  signalled = true;
  void saveAll().finally(() => {
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    // Someone else handles this signal (more listeners than signal-exit's own): theirs to end
    // the process. Otherwise raise it again: signal-exit flushes the file caches (and spills
    // what is still unsaved) and the process ends by the signal, as it would have.
    if (process.listeners(signal).length <= signalExitListeners()) process.kill(process.pid, signal);
  });
}

/**
 * How many signal listeners belong to signal-exit: v4 (ours) and v3 (bundled by other
 * packages, as proper-lockfile) each count their instances where the other can read it, the
 * same way signal-exit itself decides whether anyone else handles a signal.
 */
function signalExitListeners(): number {
  const v4 = (globalThis as Record<symbol, { count?: unknown } | undefined>)[Symbol.for('signal-exit emitter')]?.count;
  const v3 = (process as unknown as { __signal_exit_emitter__?: { count?: unknown } }).__signal_exit_emitter__?.count;
  return (typeof v4 === 'number' ? v4 : 0) + (typeof v3 === 'number' ? v3 : 0);
}
