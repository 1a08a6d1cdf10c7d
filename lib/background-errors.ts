import type { EventEmitter } from 'node:events';
import { DepcacheError, errorMessage } from './errors';

// Warnings already given, by code and subject: a failure that repeats (an autosave retried every
// tick while a disk is full) warns once, not once per attempt.
const warned = new Set<string>();

/**
 * Reports a failure of background work, which has no caller to throw to: an `error` event when
 * someone listens, else a process warning, once per code and subject (`subject` names the
 * cache or pool). Never throws, not even when an `error` listener does.
 */
export function reportBackgroundError(emitter: EventEmitter, err: unknown, subject: string, fallbackCode: string): void {
  const error = err instanceof Error ? err : new Error(errorMessage(err));
  if (emitter.listenerCount('error') > 0) {
    try {
      emitter.emit('error', error);
      return;
    } catch {
      // a throwing error listener falls back to the warning
    }
  }
  const code = error instanceof DepcacheError ? error.code : fallbackCode;
  const key = `${code}:${subject}`;
  if (warned.has(key)) return;
  warned.add(key);
  process.emitWarning(error.message, { code: `DEPCACHE_${code}` });
}

/**
 * Calls every listener of `event`, each guarded: one failing listener must not stop the others,
 * nor the operation that emitted. Failures go to `report`.
 */
export function emitGuarded(emitter: EventEmitter, event: string, args: readonly unknown[], report: (err: unknown) => void): void {
  for (const listener of emitter.listeners(event) as Array<(...a: unknown[]) => void>) {
    try {
      listener.apply(emitter, args as unknown[]);
    } catch (err) {
      report(err);
    }
  }
}
