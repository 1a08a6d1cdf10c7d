import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { BusOperation, CacheManager, ManagerBus, RemoteOperation } from '../manager';
import { ConnectionHold } from './connection-hold';
import { BusGapError, RedisUnavailableError } from './errors';
import { busKey, checkKeyPrefix } from './keys';
import { newRedis, type RedisClient } from './redis-store';

export type { BusOperation } from '../manager';

/** What one process tells the others (the fields of one stream entry). */
export interface BusMessage {
  readonly origin: string;
  readonly op: BusOperation;
  readonly cache: string;
  readonly cascade: boolean;
}

/** Options of {@link connectBus}. */
export interface BusOptions {
  /** The Redis stream the manager's processes share. @default `<keyPrefix>:{<manager name>}:bus` */
  readonly stream?: string;
  /** Prefix of the default stream name. @default 'depcache' */
  readonly keyPrefix?: string;
  /**
   * Apply other processes' saves of caches kept in Redis here, key by key (this process's
   * unsaved edits are kept). @default false
   */
  readonly followSaves?: boolean;
  /** Messages kept in the stream for processes that were away (approximate). @default 100000 */
  readonly maxLength?: number;
}

// How long one XREAD blocks before it is sent again (a close() never waits longer than this
// for the reader connection: it is disconnected).
const BLOCK_MS = 2000;

// How long close() waits for the answer to QUIT before it drops the connection.
const QUIT_MS = 10_000;

/**
 * Invalidation over a Redis stream: operations announced by this process's manager are
 * appended; those of other processes are read in order and applied here, with the same cascade.
 * Each process reads from its own position, so one that loses its connection catches up when
 * it is back. When it cannot (the stream was trimmed past its position, or Redis restarted),
 * it invalidates every cache of the manager and reports a {@link BusGapError}.
 */
export class InvalidationBus implements ManagerBus {
  readonly origin = randomUUID();
  readonly stream: string;
  readonly followSaves: boolean;
  readonly #client: Redis;
  readonly #reader: Redis;
  readonly #manager: CacheManager;
  readonly #ownsClient: boolean;
  readonly #maxLength: number;
  #lastId = '0-0';
  #runId = '';
  #closed = false;
  #reading: Promise<void> | undefined;
  /** Ends the read loop's pause after a failed read at once (close() calls it). */
  #wake: (() => void) | undefined;
  readonly #clientHold: ConnectionHold;
  readonly #readerHold: ConnectionHold;
  // A Cluster's INFO comes from any node: there, a restart shows as a stream that is gone.
  readonly #cluster: boolean;

  private constructor(manager: CacheManager, client: Redis, owns: boolean, options: BusOptions) {
    this.#manager = manager;
    this.#client = client;
    this.#ownsClient = owns;
    // Its own connection: XREAD BLOCK holds it.
    this.#reader = client.duplicate();
    this.#cluster = (client as unknown as { isCluster?: boolean }).isCluster === true;
    // The reader's blocking XREAD never holds the process open; an announcement does, until sent.
    this.#readerHold = new ConnectionHold(this.#reader, true);
    this.#clientHold = new ConnectionHold(client, owns);
    this.stream = options.stream ?? busKey(checkKeyPrefix(options.keyPrefix ?? 'depcache'), manager.name);
    this.followSaves = options.followSaves === true;
    this.#maxLength = options.maxLength ?? 100_000;
    let outage = false;
    for (const connection of [this.#client, this.#reader]) {
      // Reported once per outage, never thrown: ioredis reconnects by itself.
      connection.on('error', (err: Error) => {
        if (outage || this.#closed) return;
        outage = true;
        manager.reportError(new RedisUnavailableError('', this.stream, 'bus connection', err));
      });
      connection.on('ready', () => {
        outage = false;
      });
    }
  }

  /** @internal use {@link connectBus} */
  static async connect(manager: CacheManager, redis: RedisClient | string, options: BusOptions = {}): Promise<InvalidationBus> {
    const owns = typeof redis === 'string';
    const client = typeof redis === 'string' ? newRedis(redis) : (redis as unknown as Redis);
    const bus = new InvalidationBus(manager, client, owns, options);
    try {
      await bus.#readerHold.hold(async () => {
        // Named, so that operators (and the tests) can tell it in CLIENT LIST.
        if (!bus.#cluster) await bus.#reader.client('SETNAME', 'depcache-bus');
        const last = (await bus.#reader.xrevrange(bus.stream, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
        bus.#lastId = last[0]?.[0] ?? '0-0';
        if (!bus.#cluster) bus.#runId = await runIdOf(bus.#reader);
      });
      manager.attachBus(bus);
    } catch (err) {
      await bus.close();
      throw err;
    }
    bus.#reading = bus.#readLoop();
    return bus;
  }

  /** Tells the other processes. Never throws: a failure is reported. */
  publish(op: BusOperation, cache: string, cascade: boolean, detail?: unknown): void {
    if (this.#closed) return;
    const fields: Array<string | Buffer> = ['origin', this.origin, 'op', op, 'cache', cache, 'cascade', cascade ? '1' : '0'];
    const d = detail as { fields?: Buffer; whole?: boolean; step?: string } | undefined;
    if (d?.fields !== undefined) fields.push('fields', d.fields);
    if (d?.step !== undefined) fields.push('step', d.step);
    this.#clientHold
      .hold(() => this.#client.xadd(this.stream, 'MAXLEN', '~', String(this.#maxLength), '*', ...fields))
      .catch((err: unknown) => this.#manager.reportError(new RedisUnavailableError(cache, this.stream, `announce ${op}`, err)));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#reader.disconnect();
    // The loop may be in its pause after a failed read, on an unref'd timer: close() awaits the
    // loop, and a script awaiting close() would see its event loop empty there and end.
    this.#wake?.();
    await this.#reading?.catch(() => undefined);
    if (this.#ownsClient) await this.#clientHold.quit(QUIT_MS);
  }

  async #readLoop(): Promise<void> {
    let failed = false;
    while (!this.#closed) {
      let reply: Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
      try {
        if (failed) {
          await this.#checkGap();
          failed = false;
        }
        reply = (await this.#reader.xreadBuffer('COUNT', 1000, 'BLOCK', BLOCK_MS, 'STREAMS', this.stream, this.#lastId)) as typeof reply;
      } catch {
        if (this.#closed) return;
        failed = true; // reported by the error listener; read again once reconnected
        // Unref'd: a pause between reads never holds the process; close() ends it at once.
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          setTimeout(resolve, 100).unref();
        });
        this.#wake = undefined;
        continue;
      }
      for (const [, entries] of reply ?? []) {
        for (const [id, flat] of entries) {
          this.#lastId = id.toString();
          // One at a time, in order: an invalidation must not overtake the save before it.
          await this.#receive(flat);
        }
      }
    }
  }

  /** After a lost connection: whether messages may have been missed, and if so, be safe. */
  async #checkGap(): Promise<void> {
    const runId = this.#cluster ? '' : await runIdOf(this.#reader);
    const info = (await this.#reader.call('XINFO', 'STREAM', this.stream).catch(() => null)) as unknown[] | null;
    let reason: string | undefined;
    if (runId !== this.#runId || (info === null && this.#lastId !== '0-0')) reason = 'Redis restarted';
    else if (info !== null) {
      const at = info.indexOf('max-deleted-entry-id');
      const trimmed = at >= 0 ? String(info[at + 1]) : '0-0';
      if (compareIds(trimmed, this.#lastId) > 0) reason = 'the stream was trimmed past this process';
    }
    this.#runId = runId;
    if (reason === undefined) return;
    if (reason === 'Redis restarted') {
      // The stream is gone (or new): read what is there now, from the start.
      this.#lastId = '0-0';
    }
    this.#manager.reportError(new BusGapError(this.#manager.name, reason));
    for (const name of this.#manager.cacheNames) {
      const cache = this.#manager.getCache(name);
      if (!cache.hasContents) continue;
      await this.#manager.applyRemote({ op: 'invalidate', cache: name, cascade: false }).catch((err: unknown) => this.#manager.reportError(err));
    }
  }

  async #receive(flat: Buffer[]): Promise<void> {
    const fields = new Map<string, Buffer>();
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set((flat[i] as Buffer).toString(), flat[i + 1] as Buffer);
    const origin = fields.get('origin')?.toString();
    const op = fields.get('op')?.toString() as BusOperation | undefined;
    const cache = fields.get('cache')?.toString();
    if (origin === undefined || op === undefined || cache === undefined) return; // not ours
    if (origin === this.origin) return;
    if (op === 'save' && !this.followSaves) return;
    const message: RemoteOperation = { op, cache, cascade: fields.get('cascade')?.toString() === '1', detail: { fields: fields.get('fields'), step: fields.get('step')?.toString() } };
    await this.#manager.applyRemote(message).catch((err: unknown) => this.#manager.reportError(err));
  }
}

/**
 * Connects `manager` to the other processes that use the same manager name and Redis: invalidating,
 * rebuilding or deleting a cache here does the same, with the same cascade, everywhere; with
 * `followSaves`, saves elsewhere are applied here key by key. Closed with the manager.
 * @example await connectBus(manager, 'redis://127.0.0.1:6379', { followSaves: true });
 */
export function connectBus(manager: CacheManager, redis: RedisClient | string, options: BusOptions = {}): Promise<InvalidationBus> {
  manager.assertOpen();
  return InvalidationBus.connect(manager, redis, options);
}

async function runIdOf(redis: Redis): Promise<string> {
  const info = await redis.info('server');
  return /run_id:(\w+)/.exec(info)?.[1] ?? '';
}

/** Orders two stream ids (`ms-seq`). */
function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}
