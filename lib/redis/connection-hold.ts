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

  /**
   * Quits the connection: politely when it is up (pending replies arrive first), at once when it
   * is not (QUIT would wait through ioredis's reconnect attempts), and at once too when it has
   * not ended within `timeoutMs` (a paused server never answers QUIT). Resolves once it ended
   * (or was dropped on that timeout). Held until then: QUIT's reply comes back on a socket that
   * is unref'd between calls, so a script awaiting this would otherwise see its event loop
   * empty and end there, never running the code after its close.
   */
  quit(timeoutMs: number): Promise<void> {
    const client = this.#client;
    if (client.status === 'end') return Promise.resolve();
    return this.hold(
      () =>
        new Promise<void>((resolve) => {
          const finish = (): void => {
            clearTimeout(timer);
            client.off('end', finish);
            resolve();
          };
          // Ref'd, and only while this close waits: the socket may be gone (reconnecting), and
          // nothing else may be left to keep the process until the close settles.
          const timer = setTimeout(() => {
            client.disconnect();
            finish();
          }, timeoutMs);
          client.on('end', finish);
          if (client.status === 'ready') client.quit().catch(() => client.disconnect());
          else client.disconnect();
          if (client.status === 'end') finish();
        }),
    );
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
