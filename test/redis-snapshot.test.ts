import { expect } from 'chai';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import * as zlib from 'node:zlib';
import { CacheManager, CorruptCacheFileError, PersistentCache, RedisStore } from '../lib';
import { decodeKey, decodeValue } from '../lib/redis/codec';
import { SNAPSHOT_BEGIN_SCRIPT, SNAPSHOT_COMMIT_SCRIPT } from '../lib/redis/scripts';
import { parsePointer, readSnapshotParts, writeSnapshotParts } from '../lib/redis/snapshot';
import { FormatError } from '../lib/store/file-format';
import { LiveSnapshot } from '../lib/store/snapshot';
import { makeTempDir, removeDir, runFixture } from './helpers';
import { useRedisServer } from './redis-server';

/** Writes `map` as snapshot parts into memory and reads them back. */
async function roundTrip(map: Map<unknown, unknown>): Promise<{ parts: Map<string, Buffer>; read: Map<unknown, unknown> }> {
  const parts = new Map<string, Buffer>();
  const written = await writeSnapshotParts('c', new LiveSnapshot(map), 'id', async (field, part) => {
    parts.set(field, part);
  });
  const pointer = { id: 'id', version: 1, entries: map.size, ...written };
  const result = await readSnapshotParts('c', pointer, async (field) => parts.get(field) ?? null);
  const read = new Map<unknown, unknown>();
  for (const pairs of result?.batches ?? []) for (let i = 0; i < pairs.length; i += 2) read.set(pairs[i], pairs[i + 1]);
  return { parts, read };
}

describe('Redis snapshots: parts', () => {
  it('round-trips any map through its parts (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.oneof(fc.string(), fc.integer()), fc.jsonValue()), { maxLength: 300 }), async (pairs) => {
        const map = new Map<unknown, unknown>(pairs);
        expect([...(await roundTrip(map)).read]).to.deep.equal([...map]);
      }),
      { numRuns: 100 },
    );
  });

  it('cuts a large snapshot into parts at frame boundaries and reads it back whole', async () => {
    const map = new Map<unknown, unknown>();
    for (let i = 0; i < 60_000; i++) map.set(`key-${i}`, { id: i, name: `user ${i}` });
    const { parts, read } = await roundTrip(map);
    expect(parts.size).to.be.greaterThan(1);
    expect(read).to.deep.equal(map);
  });

  it('reads nothing when a part is gone (replaced meanwhile), and refuses damaged or misnamed parts', async () => {
    const map = new Map<unknown, unknown>([['a', 1], ['b', { x: [1, 2] }]]);
    const parts = new Map<string, Buffer>();
    const written = await writeSnapshotParts('c', new LiveSnapshot(map), 'id', async (field, part) => void parts.set(field, part));
    const pointer = { id: 'id', version: 1, entries: 2, ...written };
    expect(await readSnapshotParts('c', pointer, async () => null)).to.equal(undefined);
    const part = parts.get('id:0') as Buffer;
    const flipped = Buffer.from(part);
    flipped[flipped.length - 30] = (flipped[flipped.length - 30] as number) ^ 0xff;
    let err: unknown;
    await readSnapshotParts('c', pointer, async () => flipped).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(FormatError);
    err = undefined;
    await readSnapshotParts('c', { ...pointer, bytes: pointer.bytes + 1 }, async () => part).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(FormatError);
    err = undefined;
    await readSnapshotParts('other', pointer, async () => part).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(FormatError);
    // A planted part that would inflate far past the snapshot's size is refused, not inflated.
    err = undefined;
    const bomb = zlib.deflateRawSync(Buffer.alloc(64 * 1024 * 1024));
    await readSnapshotParts('c', pointer, async () => bomb).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(FormatError);
  });

  it('parses only well-formed pointers', () => {
    expect(parsePointer('ab12 7 3 1000 20')).to.deep.equal({ id: 'ab12', version: 7, parts: 3, bytes: 1000, entries: 20 });
    expect(parsePointer('ab12 7 3 1000')).to.equal(undefined);
    expect(parsePointer('ab12 x 3 1000 20')).to.equal(undefined);
  });
});

describe('Redis snapshots (real redis-server)', function () {
  this.timeout(60_000);
  const server = useRedisServer();
  let client: Redis;
  const dirs: string[] = [];
  const managers: CacheManager[] = [];
  const newManager = (): CacheManager => {
    const dir = makeTempDir();
    dirs.push(dir);
    const manager = new CacheManager('snap', { baseDirectory: dir });
    managers.push(manager);
    return manager;
  };
  const hashKey = (name: string) => `depcache:{snap:${name}}`;

  beforeEach(async () => {
    client = new Redis(server().url);
    await client.flushall();
  });
  afterEach(async () => {
    for (const m of managers.splice(0)) await m.close().catch(() => undefined);
    client.disconnect();
    for (const d of dirs.splice(0)) removeDir(d);
  });

  /** What the hash holds, decoded: the whole truth a snapshot load must equal. */
  async function hashContents(name: string): Promise<Map<unknown, unknown>> {
    const out = new Map<unknown, unknown>();
    // String keys only here: their fields are text, as hgetallBuffer's object keys are.
    for (const [field, value] of Object.entries(await client.hgetallBuffer(hashKey(name)))) {
      const bytes = Buffer.from(field, 'utf8');
      if (bytes[0] !== 0) out.set(decodeKey(bytes), decodeValue(value));
    }
    return out;
  }

  /** A store with snapshots from `minEntries` on, and a cache of `n` entries `k<i>` = i saved through it, its snapshot written. */
  async function savedWithSnapshot(name: string, n: number, minEntries: number) {
    const store = new RedisStore({ redis: client, snapshotMinEntries: minEntries });
    const cache = store.attach(new PersistentCache<string, unknown>(name, { manager: newManager() }));
    await cache.loadOrBuild();
    for (let i = 0; i < n; i++) cache.set(`k${i}`, i);
    await cache.save();
    await cache.backgroundSettled();
    return { store, cache };
  }

  /** Counts the commands Redis runs while `fn` does. */
  async function commandsDuring(fn: () => Promise<unknown>): Promise<string[]> {
    const monitor = await client.monitor();
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => seen.push(String(args[0]).toLowerCase()));
    await fn();
    await new Promise((resolve) => setTimeout(resolve, 50));
    monitor.disconnect();
    return seen;
  }

  it('writes a snapshot after a save of a large cache, and a load reads it and the changes since, not every field', async () => {
    const store = new RedisStore({ redis: client, snapshotMinEntries: 1000 });
    const writer = store.attach(new PersistentCache<string, unknown>('big', { manager: newManager() }));
    await writer.loadOrBuild();
    for (let i = 0; i < 5000; i++) writer.set(`k${i}`, { i, at: new Date(i) });
    await writer.save();
    await writer.backgroundSettled();
    const pointer = parsePointer((await client.hget(hashKey('big'), '\u0000snap')) as string);
    expect(pointer?.entries).to.equal(5000);
    // Changes after the snapshot, by this process and by one that writes no snapshots.
    writer.set('k1', 'changed');
    writer.delete('k2');
    await writer.save();
    const plain = new RedisStore({ redis: client, snapshotMinEntries: Number.POSITIVE_INFINITY });
    const other = plain.attach(new PersistentCache<string, unknown>('big', { manager: newManager() }));
    await other.load();
    other.set('k3', 'other');
    other.set('new', 1);
    other.delete('k4');
    await other.save();
    const reader = store.attach(new PersistentCache<string, unknown>('big', { manager: newManager() }));
    const commands = await commandsDuring(() => reader.load());
    expect(commands).to.not.include('hscan');
    expect(new Map(reader)).to.deep.equal(await hashContents('big'));
    expect(reader.get('k1')).to.equal('changed');
    expect(reader.has('k2')).to.equal(false);
    expect(reader.get('k3')).to.equal('other');
    expect(reader.has('k4')).to.equal(false);
    expect(reader.get('k5')).to.deep.equal({ i: 5, at: new Date(5) });
  });

  it('writes a new snapshot once the changes since pass its share, dropping the old parts and the log before it', async () => {
    const store = new RedisStore({ redis: client, snapshotMinEntries: 1000, snapshotShare: 0.1 });
    const cache = store.attach(new PersistentCache<string, number>('grow', { manager: newManager() }));
    await cache.loadOrBuild();
    for (let i = 0; i < 2000; i++) cache.set(`k${i}`, i);
    await cache.save();
    await cache.backgroundSettled();
    const first = parsePointer((await client.hget(hashKey('grow'), '\u0000snap')) as string);
    for (let i = 0; i < 150; i++) cache.set(`k${i}`, -i);
    await cache.save();
    await cache.backgroundSettled();
    expect(parsePointer((await client.hget(hashKey('grow'), '\u0000snap')) as string)?.id).to.equal(first?.id); // 150 of 2000: under 10%
    expect(await client.zcard(`${hashKey('grow')}:log`)).to.equal(150);
    for (let i = 150; i < 300; i++) cache.set(`k${i}`, -i);
    await cache.save();
    await cache.backgroundSettled();
    const second = parsePointer((await client.hget(hashKey('grow'), '\u0000snap')) as string);
    expect(second?.id).to.not.equal(first?.id);
    expect(await client.zcard(`${hashKey('grow')}:log`)).to.equal(0);
    const fields = await client.hkeys(`${hashKey('grow')}:snap`);
    expect(fields.every((f) => f.startsWith(`${second?.id}:`))).to.equal(true);
    const reader = store.attach(new PersistentCache<string, number>('grow', { manager: newManager() }));
    await reader.load();
    expect(new Map(reader)).to.deep.equal(await hashContents('grow'));
  });

  it('reads the hash instead of a damaged snapshot, reports it, and quarantines nothing', async () => {
    const { store, cache } = await savedWithSnapshot('dmg', 100, 10);
    const pointer = parsePointer((await client.hget(hashKey('dmg'), '\u0000snap')) as string);
    const field = `${pointer?.id}:0`;
    const part = (await client.hgetBuffer(`${hashKey('dmg')}:snap`, field)) as Buffer;
    part[part.length - 40] = (part[part.length - 40] as number) ^ 0xff;
    await client.hset(`${hashKey('dmg')}:snap`, field, part);
    const manager = newManager();
    const errors: Error[] = [];
    manager.on('error', (e) => errors.push(e));
    const reader = store.attach(new PersistentCache<string, number>('dmg', { manager, onCorrupt: 'throw' }));
    expect(await reader.load()).to.equal(true);
    expect(reader.size).to.equal(100);
    expect(reader.get('k99')).to.equal(99);
    const reported = errors.find((e) => e instanceof CorruptCacheFileError) as CorruptCacheFileError | undefined;
    expect(reported?.code).to.equal('ECORRUPT');
    expect(reported?.message).to.include(':snap');
    expect(await client.exists(hashKey('dmg'))).to.equal(1);
    expect((await client.keys('*corrupt*')).length).to.equal(0);
    // The consistent read of the hash wrote a sound snapshot in its place.
    await reader.backgroundSettled();
    expect(parsePointer((await client.hget(hashKey('dmg'), '\u0000snap')) as string)?.id).to.not.equal(pointer?.id);
  });

  it('commits a snapshot only while the hash is its state or a later one whose changes are logged, and never an older one', async () => {
    const key = hashKey('s');
    const keys = [key, `${key}:log`, `${key}:snap`];
    const begin = (epoch: string, at: number) => client.eval(SNAPSHOT_BEGIN_SCRIPT, 3, ...keys, epoch, String(at));
    const commit = (epoch: string, at: number, id: string) => client.eval(SNAPSHOT_COMMIT_SCRIPT, 3, ...keys, epoch, String(at), id, '1', '10', '1');
    await client.hset(key, '\u0000epoch', 'e:1', '\u0000ver', '5');
    expect(await begin('e:2', 5)).to.equal('moved'); // another epoch
    expect(await begin('e:1', 4)).to.equal('moved'); // version 4 is gone and its changes since were not logged
    expect(await begin('e:1', 5)).to.equal('ok');
    await client.hset(`${key}:snap`, 'a:0', 'x');
    expect(await commit('e:1', 5, 'missing')).to.equal('incomplete'); // a part is not there
    await client.hset(key, '\u0000ver', '7'); // two saves since, logged
    await client.zadd(`${key}:log`, 6, 'f6', 7, 'f7');
    expect(await commit('e:1', 5, 'a')).to.equal('ok');
    expect(await client.hget(key, '\u0000snap')).to.equal('a 5 1 10 1');
    expect(await client.zrange(`${key}:log`, 0, -1)).to.deep.equal(['f6', 'f7']);
    // A snapshot of version 6 replaces it; one of version 5, written meanwhile, is refused: its
    // changes since were trimmed from the log by the newer one.
    await client.hset(`${key}:snap`, 'b:0', 'y', 'c:0', 'z');
    expect(await commit('e:1', 6, 'b')).to.equal('ok');
    expect(await client.zrange(`${key}:log`, 0, -1)).to.deep.equal(['f7']);
    expect(await commit('e:1', 5, 'c')).to.equal('older');
    expect(await client.hkeys(`${key}:snap`)).to.deep.equal(['b:0']);
    await client.hset(key, '\u0000ver', '3');
    await client.hset(`${key}:snap`, 'd:0', 'w');
    expect(await commit('e:1', 6, 'd')).to.equal('moved'); // the hash went back: reset and saved anew
  });

  it('a delete or a reset removes the snapshot and its log with the hash', async () => {
    const { store, cache } = await savedWithSnapshot('gone', 50, 10);
    expect(await client.exists(`${hashKey('gone')}:snap`)).to.equal(1);
    await cache.deleteSavedContent();
    expect(await client.exists(`${hashKey('gone')}:snap`, `${hashKey('gone')}:log`)).to.equal(0);
    cache.clear();
    for (let i = 0; i < 20; i++) cache.set(`n${i}`, i);
    await cache.save();
    await cache.backgroundSettled();
    const reader = store.attach(new PersistentCache<string, number>('gone', { manager: newManager() }));
    await reader.load();
    expect(new Map(reader)).to.deep.equal(await hashContents('gone'));
    expect(reader.size).to.equal(20);
  });

  it('an older depcache that saves without logging: no snapshot is read or written until a save drops it', async () => {
    const { store, cache: writer } = await savedWithSnapshot('mixed', 50, 10);
    expect(await client.hget(hashKey('mixed'), '\u0000snap')).to.be.a('string');
    // What an older depcache's save does: the fields and the record, no version, no log.
    await client.hset(hashKey('mixed'), '\u0001k1', '\u0001"old"', '\u0000meta', '{"savedAt":1,"entries":50}');
    const reader = store.attach(new PersistentCache<string, unknown>('mixed', { manager: newManager() }));
    await reader.load();
    expect(reader.get('k1')).to.equal('old');
    // The writer's memory lacks that change: its next save drops the snapshot and writes none from memory.
    writer.set('k2', 'new');
    await writer.save();
    await writer.backgroundSettled();
    expect(await client.hget(hashKey('mixed'), '\u0000snap')).to.equal(null);
    const again = store.attach(new PersistentCache<string, unknown>('mixed', { manager: newManager() }));
    await again.load();
    await again.backgroundSettled(); // a consistent read of the hash: a sound snapshot
    expect(await client.hget(hashKey('mixed'), '\u0000snap')).to.be.a('string');
    const last = store.attach(new PersistentCache<string, unknown>('mixed', { manager: newManager() }));
    await last.load();
    expect(new Map(last)).to.deep.equal(await hashContents('mixed'));
    expect(last.get('k1')).to.equal('old');
    expect(last.get('k2')).to.equal('new');
  });

  it('a process SIGKILLed while writing its snapshot leaves the hash whole; the next snapshot drops its parts', async () => {
    const dir = makeTempDir();
    dirs.push(dir);
    const result = await runFixture('redis-snapshot-kill.ts', [server().url, dir, '200000'], { timeoutMs: 60_000 });
    expect(result.signal, result.stderr).to.equal('SIGKILL');
    expect(await client.hget(hashKey('killed'), '\u0000snap')).to.equal(null); // never made current
    const orphans = await client.hkeys(`${hashKey('killed')}:snap`);
    expect(orphans.length).to.be.greaterThan(1);
    const store = new RedisStore({ redis: client, snapshotMinEntries: 1000 });
    const reader = store.attach(new PersistentCache<string, unknown>('killed', { manager: newManager() }));
    await reader.load();
    expect(reader.size).to.equal(200_000);
    expect(reader.get('k199999')).to.deep.equal({ i: 199_999, name: 'row 199999' });
    await reader.backgroundSettled(); // its consistent read of the hash: a snapshot of its own
    const pointer = parsePointer((await client.hget(hashKey('killed'), '\u0000snap')) as string);
    const fields = await client.hkeys(`${hashKey('killed')}:snap`);
    expect(fields.length).to.equal(pointer?.parts);
    expect(fields.every((f) => f.startsWith(`${pointer?.id}:`))).to.equal(true);
    const again = store.attach(new PersistentCache<string, unknown>('killed', { manager: newManager() }));
    await again.load();
    expect(again.size).to.equal(200_000);
  });

  it('checks its options', () => {
    expect(() => new RedisStore({ redis: client, snapshotMinEntries: 0 })).to.throw(TypeError, /snapshotMinEntries/);
    expect(() => new RedisStore({ redis: client, snapshotMinEntries: 1.5 })).to.throw(TypeError, /snapshotMinEntries/);
    expect(() => new RedisStore({ redis: client, snapshotShare: 0 })).to.throw(TypeError, /snapshotShare/);
    expect(() => new RedisStore({ redis: client, snapshotShare: 0.9 })).to.throw(TypeError, /snapshotShare/);
  });
});
