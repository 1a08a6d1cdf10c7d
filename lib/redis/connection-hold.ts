import type { Redis } from 'ioredis';

/**
 * Lets a connection hold the event loop open only while a call waits on it, so that a script
 * ends by itself when only depcache's connections are left (as it does with file caches),
 * and never ends under an `await` of a load or save. Applies to a client depcache made (from a
 * URL) or duplicated; a client passed in is the caller's and is left alone. A Cluster's
 * connections are not managed (they hold the process until closed).
 */
export class ConnectionHold {
  #waiting = 0;
  readonly #client: Redis;
  readonly #managed: boolean;

  constructor(client: Redis, managed: boolean) {
    this.#client = client;
    this.#managed = managed && (client as unknown as { isCluster?: boolean }).isCluster !== true;
    if (!this.#managed) return;
    // A new socket on every (re)connect, and ioredis's reconnect timer while it is down.
    for (const event of ['connect', 'ready', 'reconnecting', 'close']) client.on(event, () => this.#apply());
    this.#apply();
  }

  /** Holds the event loop open until `work` settles. */
  hold<T>(work: () => Promise<T>): Promise<T> {
    if (!this.#managed) return work();
    this.#waiting++;
    this.#apply();
    let promise: Promise<T>;
    try {
      promise = work();
    } catch (err) {
      promise = Promise.reject(err);
    }
    return promise.finally(() => {
      this.#waiting--;
      this.#apply();
    });
  }

  #apply(): void {
    const held = this.#waiting > 0;
    const internals = this.#client as unknown as { stream?: { ref(): void; unref(): void }; reconnectTimeout?: { ref(): void; unref(): void } | null };
    for (const handle of [internals.stream, internals.reconnectTimeout]) {
      if (handle == null) continue;
      if (held) handle.ref();
      else handle.unref();
    }
  }
}
