import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import {
  AutoSyncCache,
  CacheManager,
  CorruptCacheFileError,
  RedisDataLostError,
  RedisStore,
  RedisUnavailableError,
  connectBus,
} from '../lib';
import { FIXTURES, assertRejects, makeTempDir, removeDir } from './helpers';
import { type RedisServer, redisServerPath, startRedis, startRedisCluster, useRedisServer } from './redis-server';

/** The hash of cache `name` of manager 'redis-test'. */
const key = (name: string) => `depcache:{redis-test:${name}}`;

describe('Redis backend (real redis-server)', function () {
  this.timeout(60000);
  const server = useRedisServer();
  let client: Redis;
  let dir: string;
  let manager: CacheManager;

  beforeEach(async () => {
    dir = makeTempDir();
    client = new Redis(server().url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    client.on('error', () => undefined); // the kill test provokes connection errors on purpose
    await client.flushall();
    manager = new CacheManager('redis-test', { baseDirectory: dir });
  });
  afterEach(async () => {
    await manager.close().catch(() => undefined);
    client.disconnect();
    removeDir(dir);
  });

  describe('RedisStore', () => {
    it('keeps a cache in one hash, types intact, and loads it in another manager', async () => {
      const store = new RedisStore({ redis: client });
      const cache = await store.open<string, unknown>('users', { manager });
      cache.set('ada', { since: new Date(0), visits: 3n, tags: new Set(['x']) });
      cache.set('n', 1);
      await cache.save();
      expect(await client.type(key('users'))).to.equal('hash');
      // two entries + the record (and its copy), the epoch, the version, and since when deletes leave tombstones
      expect(await client.hlen(key('users'))).to.equal(7);
      const otherDir = makeTempDir();
      const other = new CacheManager('redis-test', { baseDirectory: otherDir });
      const again = await store.open<string, { since: Date; visits: bigint }>('users', { manager: other });
      expect(again.get('ada')?.since).to.be.instanceOf(Date);
      expect(again.get('ada')?.visits).to.equal(3n);
      await other.close();
      removeDir(otherDir);
    });

    it('encodes a big save a part at a time, as it was when the save began: the event loop turns before the first write reaches Redis', async () => {
      const store = new RedisStore({ redis: client });
      const cache = await store.open<string, unknown>('big', { manager });
      const n = 300_000;
      for (let i = 0; i < n; i++) cache.set(`k${i}`, { i, name: `n${i}` });
      let ticks = 0;
      let running = true;
      const tick = () => {
        if (!running) return;
        ticks++;
        setImmediate(tick);
      };
      let ticksAtFirstWrite: number | undefined;
      const send = client.sendCommand;
      client.sendCommand = function (this: Redis, ...args: Parameters<Redis['sendCommand']>) {
        ticksAtFirstWrite ??= ticks;
        return send.apply(this, args);
      } as Redis['sendCommand'];
      setImmediate(tick);
      const saving = cache.save();
      setImmediate(() => {
        cache.set('k0', 'changed while the save was read');
        cache.delete('k1');
      });
      try {
        await saving;
      } finally {
        running = false;
        client.sendCommand = send;
      }
      expect(ticksAtFirstWrite, 'every entry was encoded in one piece before the first write').to.be.greaterThan(2);
      expect(cache.dirtyEdits).to.equal(2);
      const otherDir = makeTempDir();
      const other = new CacheManager('redis-test', { baseDirectory: otherDir });
      const again = await store.open<string, unknown>('big', { manager: other });
      expect(again.size).to.equal(n);
      expect(again.get('k0')).to.deep.equal({ i: 0, name: 'n0' });
      expect(again.get('k1')).to.deep.equal({ i: 1, name: 'n1' });
      await other.close();
      removeDir(otherDir);
    });

    it('keeps expiry times: a whole save, a delta save, and a load that drops what expired meanwhile', async () => {
      const store = new RedisStore({ redis: client });
      let now = 1_000_000;
      const cache = await store.open<string, number>('ttl', { manager, ttlMs: 1000, clock: () => now });
      cache.set('a', 1);
      cache.set('forever', 2, { ttlMs: Number.POSITIVE_INFINITY });
      cache.set('short', 3, { ttlMs: 10 });
      now += 10; // short expired: never saved
      await cache.save();
      cache.set('b', 4, { ttlMs: 5000 }); // a delta save
      await cache.save();
      const fields = (await client.hkeys(key('ttl'))).filter((f) => !f.startsWith('\0')); // not the cache's own fields
      expect(fields.sort()).to.deep.equal(['\x01a', '\x01b', '\x01forever']);
      const reopen = async (at: number) => {
        const otherDir = makeTempDir();
        const other = new CacheManager('redis-test', { baseDirectory: otherDir });
        try {
          const again = await store.open<string, number>('ttl', { manager: other, clock: () => at });
          return { entries: Object.fromEntries(again), a: again.expiresAt('a'), b: again.expiresAt('b') };
        } finally {
          await other.close();
          removeDir(otherDir);
        }
      };
      expect(await reopen(now)).to.deep.equal({ entries: { a: 1, forever: 2, b: 4 }, a: 1_000_000 + 1000, b: now + 5000 });
      expect(await reopen(now + 2000)).to.deep.equal({ entries: { forever: 2, b: 4 }, a: undefined, b: now + 5000 });
      // Redis loses everything: the load writes memory back, expiry times included.
      manager.on('error', () => undefined);
      await client.flushall();
      await cache.load();
      expect(cache.expiresAt('b')).to.equal(now + 5000);
      expect(await reopen(now + 2000)).to.deep.equal({ entries: { forever: 2, b: 4 }, a: undefined, b: now + 5000 });
    });

    it('sends only the changed entries on save (counted with MONITOR)', async () => {
      const store = new RedisStore({ redis: client, snapshotMinEntries: Number.POSITIVE_INFINITY });
      const cache = await store.open<string, number>('big', { manager });
      for (let i = 0; i < 100_000; i++) cache.set(`k${i}`, i);
      await cache.save();
      const monitor = await client.monitor();
      const fields: string[] = [];
      monitor.on('monitor', (_time: string, args: string[]) => {
        // EVALSHA sha 3 key log snapshot expected mode epoch record n, then the pairs and the deleted fields.
        if (/^eval/i.test(args[0] ?? '')) fields.push(...args.slice(11));
      });
      for (let i = 0; i < 9; i++) cache.set(`k${i}`, -i);
      cache.delete('k99999');
      await cache.save();
      await new Promise((r) => setTimeout(r, 100));
      monitor.disconnect();
      // 9 field/value pairs and one deleted field.
      expect(fields.length).to.equal(9 * 2 + 1);
      // + the epoch, the version, the record's copy (the record went), and, in the first day of a
      // hash made from nothing, since when deletes leave tombstones and the tombstone of k99999
      expect(await client.hlen(key('big'))).to.equal(100_000 + 5);
    });

    it('reads a cache saved by an older depcache under the old key name, and copies it to the new one', async () => {
      const old = 'depcache:redis-test:legacy';
      await client.hset(old, '\u0001a', '\u0001{"n":1}', '\u0001b', '\u00012', '\u0000meta', '{"savedAt":1,"entries":2}');
      const store = new RedisStore({ redis: client });
      const cache = await store.open<string, unknown>('legacy', { manager });
      expect(Object.fromEntries(cache)).to.deep.equal({ a: { n: 1 }, b: 2 });
      cache.set('c', 3);
      await cache.save();
      expect(await client.hget(key('legacy'), '\u0001a')).to.equal('\u0001{"n":1}'); // copied whole, not just the change
      expect(await client.hget(key('legacy'), '\u0001c')).to.equal('\u00013');
      expect(await client.hlen(old)).to.equal(3); // the old key is left as it was
    });

    it('treats missing data as nothing saved, so loadOrBuild builds', async () => {
      const store = new RedisStore({ redis: client });
      const cache = await store.open<string, number>('fresh', { manager, builder: () => ({ built: 1 }) });
      expect(cache.get('built')).to.equal(1);
    });

    it('moves damaged data aside and reports it, or throws with onCorrupt: throw', async () => {
      await client.hset(key('bad'), 'not-v8', 'garbage');
      const errors: Error[] = [];
      manager.on('error', (e) => errors.push(e));
      const store = new RedisStore({ redis: client });
      const cache = await store.open<string, number>('bad', { manager });
      expect(cache.size).to.equal(0); // rebuilt
      expect(errors[0]).to.be.instanceOf(CorruptCacheFileError);
      const moved = (errors[0] as CorruptCacheFileError).quarantinedTo as string;
      expect(await client.hget(moved, 'not-v8')).to.equal('garbage'); // kept, not deleted
      await client.hset(key('bad2'), 'not-v8', 'garbage');
      const strict = new RedisStore({ redis: client, onCorrupt: 'throw' });
      const c2 = strict.attach(new AutoSyncCache('bad2', { manager }));
      await assertRejects(c2.load(), CorruptCacheFileError, 'ECORRUPT');
    });

    it('detects a damaged JSON value even where the page would still parse as one array', async () => {
      // JSON values of a page are parsed together; '1,2' would pass there as two elements.
      for (const damaged of ['\u00011,2', '\u0001{"a":', '\u0001']) {
        const store = new RedisStore({ redis: client, onCorrupt: 'throw' });
        const cache = store.attach(new AutoSyncCache<string, unknown>(`tamper`, { manager, contents: {} }));
        for (let i = 0; i < 20; i++) cache.set(`k${i}`, { i, tags: ['x'] });
        await cache.save();
        await client.hset(key('tamper'), '\u0001k7', damaged);
        const err = await assertRejects(cache.load(), CorruptCacheFileError, 'ECORRUPT');
        expect(err.message, JSON.stringify(damaged)).to.contain('does not deserialize');
        await manager.deregisterCache('tamper').catch(() => undefined);
        await client.del(key('tamper'));
      }
    });

    it('reports errors while Redis is down, keeps the edits, and saves everything once it is back', async () => {
      const store = new RedisStore({ redis: client });
      const errors: Error[] = [];
      manager.on('error', (e) => errors.push(e));
      const cache = await store.open<string, number>('survivor', {
        manager,
        timeChecks: [{ seconds: 1, count: 1 }],
        bucketSeconds: 1,
      });
      for (let i = 0; i < 50; i++) cache.set(`a${i}`, i);
      await cache.save();
      await server().kill(); // all of Redis's data is gone with it
      cache.set('during', 1); // an autosave is attempted, and fails
      const deadline = Date.now() + 10_000;
      while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(errors.length).to.be.greaterThan(0);
      expect(cache.dirtyEdits).to.be.greaterThan(0);
      await server().restart();
      while (cache.dirtyEdits > 0 && Date.now() < deadline + 10_000) await new Promise((r) => setTimeout(r, 100));
      expect(cache.dirtyEdits).to.equal(0);
      // The restarted server was empty: the retry rewrote everything, not just the change.
      expect(await client.hlen(key('survivor'))).to.equal(56); // + the record (and its copy), the epoch, the version and the write-back's mark (\0tombs)
    });
  });

    it('after Redis lost a cache, a key deleted since the first write-back stays deleted when a stale copy writes back later', async () => {
      // The order seen in the restart chaos run: A writes back first, then deletes and saves
      // its key; B, whose copy still holds it and who has not seen the loss, writes back after.
      manager.on('error', () => undefined);
      const store = new RedisStore({ redis: client });
      const otherDir = makeTempDir();
      const other = new CacheManager('redis-test', { baseDirectory: otherDir });
      other.on('error', () => undefined);
      const a = await store.open<string, number>('lost', { manager });
      a.set('a:gone', 1);
      a.set('a:kept', 2);
      await a.save();
      const b = await store.open<string, number>('lost', { manager: other });
      expect(b.get('a:gone')).to.equal(1);
      await client.flushall();
      a.set('a:new', 3);
      await a.save(); // finds the hash gone: writes back what it holds
      a.delete('a:gone');
      await a.save();
      b.set('b:own', 4);
      await b.save(); // finds another process's write-back: writes back its own copy
      expect(b.has('a:gone'), 'the stale copy still holds it in memory').to.equal(true);
      const readerDir = makeTempDir();
      const reader = new CacheManager('redis-test', { baseDirectory: readerDir });
      const saved = await store.open<string, number>('lost', { manager: reader });
      expect(Object.fromEntries(saved)).to.deep.equal({ 'a:kept': 2, 'a:new': 3, 'b:own': 4 });
      const tombstones = async () => (await client.hkeys(key('lost'))).filter((f) => f.startsWith('\u0000d')).length;
      expect(await tombstones()).to.equal(1);
      // A day after the write-back, deletes no longer leave tombstones (they would pile up):
      // every process that held a copy has had its chance to write it back.
      await client.hset(key('lost'), '\u0000tombs', String(Math.floor(Date.now() / 1000) - 86_401));
      a.set('a:brief', 8);
      await a.save();
      a.delete('a:brief');
      await a.save();
      expect(await tombstones()).to.equal(1);
      // The deletion's marker does not stand in the way of a later save of that key.
      b.set('a:gone', 7);
      await b.save();
      await reader.invalidateCache('lost');
      expect(saved.get('a:gone')).to.equal(7);
      for (const m of [other, reader]) await m.close();
      for (const d of [otherDir, readerDir]) removeDir(d);
    });

    it('after Redis lost a cache and a process that started since saved it anew, a process holding the old copy writes it back', async () => {
      manager.on('error', () => undefined);
      const store = new RedisStore({ redis: client });
      const a = await store.open<string, number>('anew', { manager });
      a.set('a:old', 1);
      a.set('a:gone', 2);
      await a.save();
      a.delete('a:gone');
      await a.save();
      await client.flushall();
      // A process that starts now finds nothing, and saves what it made.
      const freshDir = makeTempDir();
      const fresh = new CacheManager('redis-test', { baseDirectory: freshDir });
      fresh.on('error', () => undefined);
      const b = await store.open<string, number>('anew', { manager: fresh });
      expect(b.size).to.equal(0);
      b.set('b:new', 3);
      await b.save();
      a.set('a:more', 4);
      await a.save(); // finds a hash it did not know: writes back what it holds
      await fresh.invalidateCache('anew');
      expect(Object.fromEntries(b)).to.deep.equal({ 'a:old': 1, 'a:more': 4, 'b:new': 3 });
      // A load finds it too, and writes back before it reads.
      await client.flushall();
      const c = await store.open<string, number>('anew', { manager: new CacheManager('redis-test', { baseDirectory: freshDir }) });
      c.set('c:new', 5);
      await c.save();
      await a.load();
      expect(Object.fromEntries(a)).to.deep.equal({ 'a:old': 1, 'a:more': 4, 'c:new': 5 });
      await c.manager.close();
      await fresh.close();
      removeDir(freshDir);
    });

    it('after Redis lost a cache, a key deleted in the cache saved anew stays deleted when an older copy is written back', async () => {
      // The owner of `o:k` saved it, a reader loaded it; Redis lost the cache; the owner,
      // restarted, saved the cache anew from nothing, then deleted the key it had set again.
      // The reader's write-back (it held `o:k` from before) must not bring it back.
      manager.on('error', () => undefined);
      const store = new RedisStore({ redis: client });
      const owner = await store.open<string, number>('refill', { manager });
      owner.set('o:k', 1);
      owner.set('o:other', 2);
      await owner.save();
      const readerDir = makeTempDir();
      const reader = new CacheManager('redis-test', { baseDirectory: readerDir });
      reader.on('error', () => undefined);
      const copy = await store.open<string, number>('refill', { manager: reader });
      expect(copy.get('o:k')).to.equal(1);
      await client.flushall();
      const restartedDir = makeTempDir();
      const restarted = new CacheManager('redis-test', { baseDirectory: restartedDir });
      restarted.on('error', () => undefined);
      const again = await store.open<string, number>('refill', { manager: restarted });
      expect(again.size).to.equal(0);
      again.set('o:k', 10);
      again.set('o:other', 20);
      await again.save(); // made from nothing
      again.delete('o:k');
      await again.save();
      copy.set('r:own', 3);
      await copy.save(); // finds a hash it did not know: writes back what it holds
      await restarted.invalidateCache('refill');
      expect(Object.fromEntries(again)).to.deep.equal({ 'o:other': 20, 'r:own': 3 });
      for (const m of [reader, restarted]) await m.close();
      for (const d of [readerDir, restartedDir]) removeDir(d);
    });

    it('keeps edits made after an open that a remote invalidation arrived during', async () => {
      const store = new RedisStore({ redis: client });
      const writerDir = makeTempDir();
      const writer = await store.open<string, number>('raced', { manager: new CacheManager('redis-test', { baseDirectory: writerDir }) });
      writer.set('saved', 1);
      await writer.save();
      const cache = store.attach(new AutoSyncCache<string, number>('raced', { manager }));
      const opening = cache.loadOrBuild();
      // Announced by another process while this one is still opening the cache.
      const remote = manager.applyRemote({ op: 'invalidate', cache: 'raced', cascade: false });
      await opening;
      cache.set('mine', 2); // made once the open resolved, before the remote operation ran
      await remote;
      expect(cache.get('mine')).to.equal(2);
      expect(cache.get('saved')).to.equal(1);
      await cache.save();
      expect(await client.hexists(key('raced'), '\u0001mine')).to.equal(1);
      await writer.manager.close();
      removeDir(writerDir);
    });

  describe('invalidation bus', () => {
    it("reaches the other process's dependents within 200 ms; followSaves applies the save", async () => {
      const peer = (role: string) =>
        spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(FIXTURES, 'redis-peer.ts'), role, server().url, dir], {
          stdio: ['pipe', 'pipe', 'inherit'],
        });
      const listener = peer('listener');
      const events: Array<{ event: string; cache?: string; x?: number; at: number }> = [];
      let buffer = '';
      const ready = new Promise<void>((resolve) => {
        listener.stdout.on('data', (d: Buffer) => {
          buffer += d.toString();
          const lines = buffer.split('\n');
          buffer = lines.pop() as string;
          for (const line of lines) {
            const e = JSON.parse(line) as { event: string; at: number };
            events.push(e);
            if (e.event === 'ready') resolve();
          }
        });
      });
      await ready;
      const actor = peer('actor');
      let actorOut = '';
      actor.stdout.on('data', (d: Buffer) => (actorOut += d.toString()));
      await new Promise((resolve) => actor.on('close', resolve));
      await new Promise((r) => setTimeout(r, 300));
      listener.stdin.end();
      await new Promise((resolve) => listener.on('close', resolve));

      const acted = actorOut.trim().split('\n').map((l) => JSON.parse(l) as { event: string; at: number });
      const saved = acted.find((e) => e.event === 'saved') as { at: number };
      const invalidated = acted.find((e) => e.event === 'invalidating') as { at: number };
      const followed = events.find((e) => e.event === 'x' && e.at >= saved.at);
      expect(followed?.x, 'followSaves applies the saved value').to.equal(7);
      const report = events.find((e) => e.event === 'invalidate' && e.cache === 'report' && e.at >= invalidated.at);
      expect(report, 'the dependent in the other process is invalidated').to.not.equal(undefined);
      expect((report as { at: number }).at - invalidated.at).to.be.lessThan(200);
    });
  });
});

describe('Redis: a paused server and a Cluster (real redis-server)', function () {
  this.timeout(60000);
  let bin: string;
  before(function () {
    const found = redisServerPath();
    if (!found) {
      if (process.env.CI) throw new Error('redis-server is not installed');
      this.skip();
    }
    bin = found as string;
  });

  /**
   * A server of its own (this test stops or kills it), a manager collecting its error events, a
   * URL-made store with a 500 ms timeout, and cache 'c' saved with { a: 1 }; cleaned up after.
   */
  async function withOwnServer(
    managerName: string,
    test: (t: { server: RedisServer; manager: CacheManager; store: RedisStore; errors: Error[]; cache: AutoSyncCache<string, number> }) => Promise<void>,
  ): Promise<void> {
    const server = await startRedis(bin);
    const dir = makeTempDir();
    const manager = new CacheManager(managerName, { baseDirectory: dir });
    const errors: Error[] = [];
    manager.on('error', (e) => errors.push(e));
    const store = new RedisStore({ redis: server.url, timeoutMs: 500 });
    try {
      const cache = await store.open<string, number>('c', { manager });
      cache.set('a', 1);
      await cache.save();
      await test({ server, manager, store, errors, cache });
    } finally {
      server.resume();
      await manager.close().catch(() => undefined);
      await store.close();
      await server.stop();
      removeDir(dir);
    }
  }

  it('SIGSTOPped Redis: load, save and invalidate fail after timeoutMs with EREDIS, and work once it resumes', () =>
    withOwnServer('paused', async ({ server, store, cache }) => {
      server.pause();
      cache.set('b', 2);
      for (const call of [() => cache.save(), () => cache.load(), () => cache.invalidate()]) {
        const started = Date.now();
        const err = await assertRejects(call(), RedisUnavailableError, 'EREDIS');
        expect(err.timedOut).to.equal(true);
        expect(err.message).to.contain('c:');
        expect(Date.now() - started).to.be.within(400, 2000);
      }
      expect(cache.get('b'), 'memory untouched by the failed calls').to.equal(2);
      expect(cache.dirtyEdits).to.be.greaterThan(0);
      server.resume();
      await cache.save();
      expect(cache.dirtyEdits).to.equal(0);
      const other = new CacheManager('paused', { baseDirectory: makeTempDir() });
      const again = store.attach(new AutoSyncCache<string, number>('c', { manager: other }));
      await again.load();
      expect(Object.fromEntries(again)).to.deep.equal({ a: 1, b: 2 });
      await other.close();
    }));

  it('SIGSTOPped Redis during a background snapshot: the write times out and is reported, no part of it becomes current, and the next save writes one', async () => {
    const server = await startRedis(bin);
    const dir = makeTempDir();
    const manager = new CacheManager('paused-snapshot', { baseDirectory: dir });
    const errors: Error[] = [];
    manager.on('error', (e) => errors.push(e));
    const store = new RedisStore({ redis: server.url, timeoutMs: 500, snapshotMinEntries: 1000 });
    const look = new Redis(server.url);
    try {
      const cache = await store.open<string, number>('c', { manager });
      for (let i = 0; i < 20_000; i++) cache.set(`k${i}`, i);
      await cache.save(); // a hash made by this save: its snapshot is written next, in the background
      server.pause();
      const started = Date.now();
      await cache.backgroundSettled();
      expect(Date.now() - started, 'the snapshot gave up within a few timeouts').to.be.lessThan(5000);
      const failed = errors.find((e) => e instanceof RedisUnavailableError) as RedisUnavailableError | undefined;
      expect(failed, 'the failed snapshot write is reported').to.not.equal(undefined);
      expect(failed?.timedOut).to.equal(true);
      expect(failed?.message).to.contain('snapshot');
      server.resume();
      expect(await look.hget(store.keyFor(manager, 'c'), '\u0000snap'), 'no snapshot is current').to.equal(null);
      cache.set('k0', -1);
      await cache.save();
      await cache.backgroundSettled();
      expect(await look.hget(store.keyFor(manager, 'c'), '\u0000snap'), 'a later snapshot is written').to.be.a('string');
      const other = new CacheManager('paused-snapshot', { baseDirectory: makeTempDir() });
      const again = store.attach(new AutoSyncCache<string, number>('c', { manager: other }));
      await again.load();
      expect(again.size).to.equal(20_000);
      expect(again.get('k0')).to.equal(-1);
      await other.close();
    } finally {
      server.resume();
      look.disconnect();
      await manager.close().catch(() => undefined);
      await store.close();
      await server.stop();
      removeDir(dir);
    }
  });

  it('a URL-made store reports an outage once, as an EREDIS error event, not as unhandled errors', () =>
    withOwnServer('outage', async ({ server, manager, store, errors }) => {
      await server.kill();
      await new Promise((resolve) => setTimeout(resolve, 1500)); // several reconnect attempts
      expect(errors.length).to.equal(1);
      expect(errors[0]).to.be.instanceOf(RedisUnavailableError);
      expect((errors[0] as RedisUnavailableError).code).to.equal('EREDIS');
      await server.restart();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // Redis came back empty: the store wrote back what it held, and said so.
      expect(errors.some((e) => e instanceof RedisDataLostError)).to.equal(true);
      const look = new Redis(server.url);
      const saved = await look.hgetall(store.keyFor(manager, 'c'));
      look.disconnect();
      expect(saved['\u0001a']).to.equal('\u00011');
    }));

  describe('closing a URL-made store (issue 34)', () => {
    for (const order of ['manager-store', 'store-manager', 'store-store', 'concurrent'] as const) {
      it(`${order}: every close resolves, and the edit made before them is saved`, () =>
        withOwnServer(`close-${order}`, async ({ server, manager, store, cache }) => {
          cache.set('b', 2);
          if (order === 'manager-store') {
            await manager.close();
            await store.close();
          } else if (order === 'store-manager') {
            await store.close();
            await manager.close();
          } else if (order === 'store-store') {
            await store.close();
            await store.close();
          } else {
            await Promise.all([manager.close(), store.close(), store.close()]);
          }
          expect(store.client.status, 'the connection is quit').to.equal('end');
          const look = new Redis(server.url);
          const saved = await look.hgetall(store.keyFor(manager, 'c'));
          look.disconnect();
          expect(saved['\u0001b']).to.equal('\u00012');
        }));
    }

    it('holds the process while QUIT waits for its reply (the socket is unref\'d between calls)', () =>
      withOwnServer('close-held', async ({ manager, store }) => {
        await manager.close();
        const socket = (store.client as unknown as { stream: { _handle: { hasRef(): boolean } } }).stream;
        expect(socket._handle.hasRef(), 'idle: the connection does not hold the process').to.equal(false);
        const closing = store.close();
        await new Promise((resolve) => setImmediate(resolve)); // past the saves and settles before QUIT
        expect(socket._handle?.hasRef() ?? true, 'QUIT sent: held until its reply').to.equal(true);
        await closing;
      }));

    it('a paused server: close() gives up on QUIT after timeoutMs and drops the connection', () =>
      withOwnServer('close-paused', async ({ server, manager, store }) => {
        await manager.close();
        server.pause();
        const started = Date.now();
        await store.close();
        expect(Date.now() - started).to.be.within(400, 2000);
        const client = store.client as unknown as Redis;
        if (client.status !== 'end') await new Promise((resolve) => client.once('end', resolve)); // dropped: its socket closes next
      }));
  });

  it('keys are unambiguous: manager a + cache b:c and manager a:b + cache c do not share data', async () => {
    const server = await startRedis(bin);
    const dirs = [makeTempDir(), makeTempDir()];
    const m1 = new CacheManager('a', { baseDirectory: dirs[0] });
    const m2 = new CacheManager('a:b', { baseDirectory: dirs[1] });
    const store = new RedisStore({ redis: server.url });
    try {
      expect(store.keyFor(m1, 'b:c')).to.not.equal(store.keyFor(m2, 'c'));
      const one = await store.open<string, string>('b:c', { manager: m1 });
      one.set('who', 'one');
      await one.save();
      const two = await store.open<string, string>('c', { manager: m2 });
      expect(two.has('who')).to.equal(false);
      expect(() => new RedisStore({ redis: server.url, keyPrefix: 'x{y}' })).to.throw(TypeError, /braces|\{ or \}/);
    } finally {
      await m1.close();
      await m2.close();
      await store.close();
      await server.stop();
      dirs.forEach(removeDir);
    }
  });

  it('a 3-node Cluster: save, load, follow and invalidate over the bus, and quarantine in the same slot', async () => {
    const clusterDir = makeTempDir();
    const cluster = await startRedisCluster(bin, clusterDir);
    const dirs = [makeTempDir(), makeTempDir()];
    const clients = [new Cluster(cluster.nodes), new Cluster(cluster.nodes)];
    const managers = [new CacheManager('cl', { baseDirectory: dirs[0] }), new CacheManager('cl', { baseDirectory: dirs[1] })];
    // Snapshots after every save: their scripts touch three keys of a cache, in its one slot.
    const stores = clients.map((c) => new RedisStore({ redis: c, snapshotMinEntries: 1 }));
    try {
      for (const [i, manager] of managers.entries()) await connectBus(manager, clients[i] as Cluster, { followSaves: true });
      // Names whose keys land on different nodes (slots differ), each with its hash tag.
      const names = ['users', 'orders', 'events', 'x1', 'x2', 'x3'];
      const writer = await Promise.all(names.map((n) => (stores[0] as RedisStore).open<string, number>(n, { manager: managers[0] as CacheManager })));
      const reader = await Promise.all(names.map((n) => (stores[1] as RedisStore).open<string, number>(n, { manager: managers[1] as CacheManager })));
      for (const [i, cache] of writer.entries()) {
        cache.set('k', i);
        await cache.save();
      }
      const deadline = Date.now() + 5000;
      while (reader.some((c, i) => c.get('k') !== i) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(reader.map((c) => c.get('k'))).to.deep.equal(names.map((_, i) => i));
      for (const c of writer) await c.backgroundSettled();
      for (const n of names) expect(await (clients[0] as Cluster).hget((stores[0] as RedisStore).keyFor(managers[0] as CacheManager, n), '\u0000snap')).to.be.a('string');
      const freshDir = makeTempDir();
      dirs.push(freshDir);
      const fresh = await (stores[1] as RedisStore).open<string, number>('events', { manager: new CacheManager('cl', { baseDirectory: freshDir }) });
      expect(fresh.get('k')).to.equal(2);
      await fresh.manager.close();
      // A damaged hash is moved aside with RENAME: same hash tag, same slot, no CROSSSLOT.
      const damaged = (stores[0] as RedisStore).keyFor(managers[0] as CacheManager, 'bad');
      await (clients[0] as Cluster).hset(damaged, 'not-v8', 'garbage');
      const errors: Error[] = [];
      (managers[0] as CacheManager).on('error', (e) => errors.push(e));
      const bad = await (stores[0] as RedisStore).open<string, number>('bad', { manager: managers[0] as CacheManager });
      expect(bad.size).to.equal(0);
      const moved = (errors.find((e) => e instanceof CorruptCacheFileError) as CorruptCacheFileError).quarantinedTo as string;
      expect(await (clients[0] as Cluster).hget(moved, 'not-v8')).to.equal('garbage');
    } finally {
      for (const m of managers) await m.close().catch(() => undefined);
      for (const c of clients) c.disconnect();
      await cluster.stop();
      [...dirs, clusterDir].forEach(removeDir);
    }
  });
});
