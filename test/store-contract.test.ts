import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { type CacheManager, CorruptCacheFileError, CsvCache, JsonCache, PersistentCache, type PersistentCacheOptions } from '../lib';
import { Redis } from 'ioredis';
import { RedisStore } from '../lib';
import { assertRejects, useManagersOnOneDirectory } from './helpers';
import { useRedisServer } from './redis-server';
import { LineStore } from '../examples/custom-store';

// One contract, every store a cache saves through: what holds for one holds for all of them, or
// the store says it cannot (and the cache refuses with a TypeError, never silently).

type Open = (manager: CacheManager, name: string, options?: PersistentCacheOptions<string, unknown>) => Promise<PersistentCache<string, unknown>>;

interface StoreCase {
  readonly kind: string;
  readonly open: Open;
  /** Whether values keep their types (a CSV cell is a string). */
  readonly typed: boolean;
  /** Whether expiry times are kept (else refused). */
  readonly expiry: boolean;
  /** The saved file, when the store has one that can be damaged. */
  readonly file?: (cache: PersistentCache<string, unknown>) => string;
  /** How to damage it (default: cut it short). */
  readonly damage?: (file: string) => void;
}

/** A store of the user's own, through the hooks, on a file of its own. */
function hooksStore(dir: string): Open {
  return (manager, name, options) => {
    const file = path.join(dir, `hooks-${name}.json`);
    return PersistentCache.open<string, unknown>(name, {
      ...options,
      manager,
      loader: () => (fs.existsSync(file) ? (v8.deserialize(fs.readFileSync(file)) as Map<string, unknown>) : undefined),
      saver: (_n, contents) => fs.writeFileSync(file, v8.serialize(contents)),
      deleter: () => fs.rmSync(file, { force: true }),
    });
  };
}

describe('store contract (every store)', () => {
  const managers = useManagersOnOneDirectory('contract', true);
  const cases = (): StoreCase[] => [
    { kind: 'v8 file', open: (m, n, o) => PersistentCache.open(n, { ...o, manager: m }), typed: true, expiry: true, file: (c) => c.path },
    { kind: 'JSON file', open: (m, n, o) => JsonCache.open(n, { ...o, manager: m }), typed: true, expiry: true, file: (c) => c.path },
    { kind: 'CSV file', open: (m, n, o) => CsvCache.open<string, unknown>(n, { ...o, manager: m }), typed: false, expiry: false, file: (c) => c.path },
    { kind: 'hooks', open: hooksStore(managers.dir()), typed: true, expiry: false },
    // Written from the public interface only: the proof that a user's store gets every guarantee.
    {
      kind: 'custom CacheStore',
      open: (m, n, o) => PersistentCache.open(n, { ...o, manager: m, store: new LineStore(path.join(managers.dir(), 'lines')) }),
      typed: true,
      expiry: true,
      file: (c) => new LineStore(path.join(managers.dir(), 'lines')).fileOf(c.name),
      // A line cut short is a crash's torn tail, skipped by design: damage a whole line instead.
      damage: (file) => fs.writeFileSync(file, `AAAA${fs.readFileSync(file, 'utf8')}`),
    },
  ];

  for (const kind of ['v8 file', 'JSON file', 'CSV file', 'hooks', 'custom CacheStore', 'Redis']) {
    describe(kind, function () {
      this.timeout(30000);
      let redis: Redis | undefined;
      if (kind === 'Redis') {
        const server = useRedisServer();
        beforeEach(async () => {
          redis = new Redis(server().url, { maxRetriesPerRequest: 1 });
          await redis.flushall();
        });
        afterEach(() => redis?.disconnect());
      }
      const store = (): StoreCase =>
        kind === 'Redis'
          ? { kind, open: (m, n, o) => new RedisStore({ redis: redis as Redis }).open(n, { ...o, manager: m }), typed: true, expiry: true }
          : (cases().find((c) => c.kind === kind) as StoreCase);

      it('gives back what was saved, in a fresh manager', async () => {
        const { open, typed } = store();
        const a = await open(managers.open(), 'c');
        const value = typed ? { n: 1, when: new Date(5) } : 'text';
        a.set('k', value);
        a.set('other', typed ? [1, 2] : 'more');
        expect(await a.save()).to.equal(true);
        const b = await open(managers.open(), 'c');
        expect(b.get('k')).to.deep.equal(value);
        expect(b.size).to.equal(2);
      });

      it('keeps expiry times, or refuses them with a TypeError on every path (set options, ttlMs, with maxEntries)', async () => {
        const { open, expiry } = store();
        const manager = managers.open();
        if (!expiry) {
          const bounded = await open(manager, 'bounded', { maxEntries: 10 });
          expect(() => bounded.set('k', 'v', { ttlMs: 1000 })).to.throw(TypeError, /expiry/);
          expect(bounded.has('k')).to.equal(false);
          const plain = await open(manager, 'plain');
          expect(() => plain.set('k', 'v', { ttlMs: 1000 })).to.throw(TypeError, /expiry/);
          let refused: unknown;
          await open(manager, 'lived', { ttlMs: 1000 }).catch((err: unknown) => (refused = err));
          expect(refused).to.be.instanceOf(TypeError);
          return;
        }
        const a = await open(manager, 'c', { maxEntries: 10 });
        const at = Date.now() + 60_000;
        a.set('k', 'v', { ttlMs: 60_000 });
        a.set('forever', 'v');
        await a.save();
        const b = await open(managers.open(), 'c', { maxEntries: 10 });
        expect(b.get('k')).to.equal('v');
        expect(b.expiresAt('k')).to.be.within(at - 1000, at + 1000);
        expect(b.expiresAt('forever')).to.equal(undefined);
      });

      it('with saveOnBlank: false, leaves the saved state alone when the cache is empty', async () => {
        const { open } = store();
        const a = await open(managers.open(), 'c', { saveOnBlank: false });
        a.set('k', 'v');
        await a.save();
        a.delete('k');
        expect(await a.save()).to.equal(false);
        const b = await open(managers.open(), 'c');
        expect(b.get('k')).to.equal('v');
      });

      it("raises CorruptCacheFileError on a damaged file under onCorrupt: 'throw', and moves it aside by default", async function () {
        const { open, file, damage } = store();
        if (file === undefined) this.skip(); // the user's own hooks decide what damage is
        const a = await open(managers.open(), 'c');
        a.set('k', 'v');
        await a.save();
        const where = (file as (c: PersistentCache<string, unknown>) => string)(a);
        if (damage) damage(where);
        else fs.writeFileSync(where, fs.readFileSync(where).subarray(0, 10));
        await assertRejects(open(managers.open(), 'c', { onCorrupt: 'throw' }), CorruptCacheFileError);
        expect(fs.existsSync(where)).to.equal(true);
        const b = await open(managers.open(), 'c');
        expect(b.size).to.equal(0);
        expect(fs.readdirSync(path.dirname(where)).some((f) => f.includes('.corrupt-'))).to.equal(true);
      });
    });
  }
});
