import { onExit } from 'signal-exit';
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
