import type { Redis } from 'ioredis';
import { newRedis, type RedisClient } from './redis-store';
import { randomUUID } from 'node:crypto';
import type { CacheManager } from '../manager';

/** What one process tells the others. */
export interface BusMessage {
  readonly origin: string;
  readonly op: BusOperation;
  readonly cache: string;
  readonly cascade: boolean;
}

export type BusOperation = 'invalidate' | 'rebuild' | 'delete' | 'save';

/** Options of `manager.connectBus()`. */
export interface BusOptions {
  /** The pub/sub channel. @default `depcache:<manager name>:bus` */
  readonly channel?: string;
  /** Reload a cache when another process saves it (for caches shared through Redis). @default false */
  readonly followSaves?: boolean;
}

/**
 * Invalidation over Redis pub/sub: operations announced by this process's manager are
 * published; those of other processes are applied here, with the same cascade. Messages carry
 * an origin id, so a process never reacts to its own.
 */
export class InvalidationBus {
  readonly origin = randomUUID();
  readonly channel: string;
  readonly followSaves: boolean;
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #manager: CacheManager;
  readonly #ownsPublisher: boolean;
  #closed = false;

  private constructor(manager: CacheManager, publisher: Redis, owns: boolean, options: BusOptions) {
    this.#manager = manager;
    this.#publisher = publisher;
    this.#ownsPublisher = owns;
    this.#subscriber = publisher.duplicate();
    this.channel = options.channel ?? `depcache:${manager.name}:bus`;
    this.followSaves = options.followSaves === true;
    for (const client of [this.#publisher, this.#subscriber]) {
      // Connection trouble is reported, never thrown: ioredis reconnects by itself.
      client.on('error', (err: Error) => manager.reportError(err));
    }
    this.#subscriber.on('message', (channel: string, raw: string) => {
      if (channel === this.channel) this.#receive(raw);
    });
  }

  /** @internal use `manager.connectBus()` */
  static async connect(manager: CacheManager, redis: RedisClient | string, options: BusOptions = {}): Promise<InvalidationBus> {
    const owns = typeof redis === 'string';
    const publisher = typeof redis === 'string' ? newRedis(redis) : (redis as unknown as Redis);
    const bus = new InvalidationBus(manager, publisher, owns, options);
    await bus.#subscriber.subscribe(bus.channel);
    return bus;
  }

  /** Tells the other processes. Never throws: a failure is reported. */
  publish(op: BusOperation, cache: string, cascade: boolean): void {
    if (this.#closed) return;
    const message: BusMessage = { origin: this.origin, op, cache, cascade };
    this.#publisher.publish(this.channel, JSON.stringify(message)).catch((err: unknown) => this.#manager.reportError(err));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#subscriber.quit().catch(() => this.#subscriber.disconnect());
    if (this.#ownsPublisher) await this.#publisher.quit().catch(() => this.#publisher.disconnect());
  }

  #receive(raw: string): void {
    let message: BusMessage;
    try {
      message = JSON.parse(raw) as BusMessage;
    } catch (err) {
      this.#manager.reportError(err);
      return;
    }
    if (message.origin === this.origin) return;
    if (message.op === 'save' && !this.followSaves) return;
    this.#manager.applyRemote(message).catch((err: unknown) => this.#manager.reportError(err));
  }
}
