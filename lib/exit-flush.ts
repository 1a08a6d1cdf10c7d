import { onExit } from 'signal-exit';

/** Something with dirty state to write synchronously before the process goes. */
export interface ExitFlushable {
  flushSync(): void;
}

const targets = new Set<ExitFlushable>();
let installed = false;

/**
 * Flushes `target` synchronously on normal exit, `process.exit()`, and SIGINT/SIGTERM/SIGHUP
 * (signal-exit re-raises the signal afterwards, so the exit status is what it would have been).
 * Only synchronous work can run there, which is why custom async savers are not called at exit.
 */
export function flushAtExit(target: ExitFlushable): void {
  targets.add(target);
  if (installed) return;
  installed = true;
  onExit(() => {
    for (const t of targets) {
      try {
        t.flushSync();
      } catch (err) {
        // The process is going away: stderr is the only place left to say so.
        try {
          process.stderr.write(`depcache: save at exit failed: ${String((err as Error)?.message ?? err)}\n`);
        } catch {
          // nothing more to do
        }
      }
    }
  });
}

/** Stops flushing `target` at exit (after `close()`). */
export function forgetAtExit(target: ExitFlushable): void {
  targets.delete(target);
}
