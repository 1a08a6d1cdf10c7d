import { AsyncLocalStorage } from 'node:async_hooks';

// The lifecycle operations enclosing the running code, through its async context: a call from
// inside one of them into the same queue would wait for itself.
const enclosing = new AsyncLocalStorage<ReadonlySet<object>>();

/**
 * Runs one cache's lifecycle operations (load, save, build, merge, ...) one at a time, in the
 * order they were asked for, and tells a call made from inside the running operation (a hook
 * awaiting its own cache) apart, so it can fail at once instead of deadlocking.
 */
export class OperationQueue {
  // The operation running now, if any.
  #running: object | null = null;
  #tail: Promise<unknown> = Promise.resolve();

  /** Whether the calling code runs inside this queue's current operation. */
  get calledFromInside(): boolean {
    const running = this.#running;
    return running !== null && enclosing.getStore()?.has(running) === true;
  }

  /** Runs `fn` once every operation queued before it has settled; a failure does not stop the queue. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const enter = (): Promise<T> => {
      const token = {};
      this.#running = token;
      const inside = new Set(enclosing.getStore());
      inside.add(token);
      return enclosing.run(inside, fn).finally(() => {
        if (this.#running === token) this.#running = null;
      });
    };
    const run = this.#tail.then(enter, enter);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}

/** Starts `fn` outside every enclosing operation (background work of its own). */
export function outsideOperations<T>(fn: () => Promise<T>): Promise<T> {
  return enclosing.exit(fn);
}
