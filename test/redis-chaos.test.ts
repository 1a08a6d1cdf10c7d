import { expect } from 'chai';
import { Redis } from 'ioredis';
import { AutoSyncCache, CacheManager, RedisStore } from '../lib';
import { makeTempDir, removeDir, runFixture } from './helpers';
import { useRedisServer } from './redis-server';
import { decodeKey, decodeValue } from '../lib/redis/codec';

interface Outcome {
  readonly id: string;
  readonly acked: Record<string, number | null>;
  readonly sharedWrites: Record<string, number[]>;
  readonly lostSeen: number;
  readonly dirty: number;
}

const PROCESSES = 4;
const SECONDS = 10;

/**
 * Several processes write one Redis-backed cache for a few seconds (sets, deletes, saves,
 * invalidations with a local dependent), then every key is checked against what each process
 * knows it saved: keys only one process writes must hold its last saved value (0 lost) or be
 * absent if it deleted them (0 resurrected); keys all write hold one of the written values.
 */
describe('Redis: several processes, one cache, faults (real redis-server)', function () {
  this.timeout(120_000);
  const server = useRedisServer();
  let client: Redis;
  let dir: string;

  beforeEach(async () => {
    dir = makeTempDir();
    client = new Redis(server().url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    client.on('error', () => undefined);
    await client.flushall();
  });
  afterEach(() => {
    client.disconnect();
    removeDir(dir);
  });

  async function run(follow: boolean, fault?: (elapsedMs: number) => Promise<void>): Promise<Outcome[]> {
    const children = Array.from({ length: PROCESSES }, (_, i) =>
      runFixture('redis-chaos.ts', [server().url, dir, String(i), String(SECONDS), follow ? '1' : '0'], { timeoutMs: 60_000 }),
    );
    const started = Date.now();
    let faulting: Promise<void> | undefined;
    if (fault) faulting = fault(started);
    const results = await Promise.all(children);
    await faulting;
    return results.map((r) => {
      expect(r.code, r.stderr).to.equal(0);
      return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Outcome;
    });
  }

  async function check(outcomes: Outcome[]): Promise<{ lost: string[]; resurrected: string[] }> {
    const readerDir = makeTempDir();
    const manager = new CacheManager('chaos', { baseDirectory: readerDir });
    const store = new RedisStore({ redis: client });
    const saved = store.attach(new AutoSyncCache<string, number>('shared', { manager }));
    expect(await saved.load()).to.equal(true);
    // The load read the snapshot and the changes logged since: exactly what the hash holds.
    const hashKey = store.keyFor(manager, 'shared');
    expect(await client.hget(hashKey, '\u0000snap'), 'a snapshot is current').to.be.a('string');
    const inHash = new Map<unknown, unknown>();
    for (const [field, value] of Object.entries(await client.hgetallBuffer(hashKey))) {
      const raw = Buffer.from(field, 'latin1');
      if (raw[0] !== 0) inHash.set(decodeKey(raw), decodeValue(value));
    }
    expect(new Map(saved)).to.deep.equal(inHash);
    const lost: string[] = [];
    const resurrected: string[] = [];
    for (const outcome of outcomes) {
      expect(outcome.dirty, `process ${outcome.id} ended with unsaved edits`).to.equal(0);
      expect(outcome.lostSeen, `process ${outcome.id} saw its saved values go missing`).to.equal(0);
      for (const [key, value] of Object.entries(outcome.acked)) {
        if (value === null && saved.has(key)) resurrected.push(`${key}=${saved.get(key)}`);
        if (value !== null && saved.get(key) !== value) lost.push(`${key}: ${value} saved, ${saved.get(key)} in Redis`);
      }
    }
    const written = new Map<string, Set<number>>();
    for (const outcome of outcomes) {
      for (const [key, values] of Object.entries(outcome.sharedWrites)) {
        for (const v of values) (written.get(key) ?? written.set(key, new Set()).get(key))?.add(v);
      }
    }
    for (const [key, values] of written) {
      expect(values.has(saved.get(key) as number), `shared key ${key} holds a value someone wrote`).to.equal(true);
    }
    for (const key of saved.keys()) expect(key.startsWith('p') || written.has(key), `unexpected key ${key}`).to.equal(true);
    await manager.close();
    removeDir(readerDir);
    return { lost, resurrected };
  }

  const sleepUntil = (t: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, t - Date.now())));

  it('plain: 0 lost, 0 resurrected', async () => {
    const result = await check(await run(false));
    expect(result).to.deep.equal({ lost: [], resurrected: [] });
  });

  it('followSaves: 0 lost, 0 resurrected', async () => {
    const result = await check(await run(true));
    expect(result).to.deep.equal({ lost: [], resurrected: [] });
  });

  it('Redis SIGKILLed and restarted empty mid-run: 0 lost, 0 resurrected', async () => {
    const outcomes = await run(true, async (started) => {
      await sleepUntil(started + 2500 + SECONDS * 250);
      await server().kill();
      await new Promise((resolve) => setTimeout(resolve, 500));
      await server().restart();
    });
    const result = await check(outcomes);
    expect(result).to.deep.equal({ lost: [], resurrected: [] });
  });

  it('the bus connections killed mid-run: 0 lost, 0 resurrected', async () => {
    const outcomes = await run(true, async (started) => {
      for (const at of [2500 + SECONDS * 250, 2500 + SECONDS * 600]) {
        await sleepUntil(started + at);
        const list = (await client.client('LIST')) as string;
        for (const line of list.split('\n')) {
          const id = /\bid=(\d+)\b.*\bname=depcache-bus\b/.exec(line)?.[1];
          if (id) await client.client('KILL', 'ID', id);
        }
      }
    });
    const result = await check(outcomes);
    expect(result).to.deep.equal({ lost: [], resurrected: [] });
  });
});
