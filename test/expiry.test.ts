import { expect } from 'chai';
import fc from 'fast-check';
import * as fs from 'node:fs';
import { inspect } from 'node:util';
import {
  AutoSyncCache,
  CsvCache,
  JsonCache,
  LazyCache,
  NonPersistentCache,
  PersistentCache,
  memoize,
} from '../lib';
import { EntryBook } from '../lib/expiry/entry-book';
import { runCliHere, useManagersOnOneDirectory, useTempManager } from './helpers';

/** A clock the test moves by hand: nothing sleeps. */
function manualClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void; set: (t: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms), set: (v) => (t = v) };
}

describe('expiry and bounds (ttlMs, maxEntries)', () => {
  const { open } = useManagersOnOneDirectory('x', true);

  describe('ttlMs', () => {
    it('hides an entry from the instant it expires: at, just before and just after the boundary', () => {
      const clock = manualClock();
      const cache = new NonPersistentCache<string, number>('c', { manager: open(), contents: [], ttlMs: 100, clock: clock.now });
      const t0 = clock.now();
      cache.set('a', 1);
      expect(cache.expiresAt('a')).to.equal(t0 + 100);
      clock.advance(99);
      expect(cache.get('a')).to.equal(1);
      expect(cache.has('a')).to.equal(true);
      expect([...cache]).to.deep.equal([['a', 1]]);
      clock.advance(1); // exactly t0 + 100
      expect(cache.get('a')).to.equal(undefined);
      expect(cache.has('a')).to.equal(false);
      expect(cache.expiresAt('a')).to.equal(undefined);
      expect([...cache], 'iteration skips it').to.deep.equal([]);
      expect([...cache.keys()]).to.deep.equal([]);
      expect([...cache.values()]).to.deep.equal([]);
      expect([...cache.entries()]).to.deep.equal([]);
      const seen: unknown[] = [];
      cache.forEach((v, k) => seen.push([k, v]));
      expect(seen).to.deep.equal([]);
      clock.advance(1);
      expect(cache.get('a')).to.equal(undefined);
      // size counts it until a purge; the purge removes it, as an edit.
      expect(cache.size).to.equal(1);
      const dirty = cache.dirtyEdits;
      expect(cache.purgeExpired()).to.equal(1);
      expect(cache.size).to.equal(0);
      expect(cache.dirtyEdits).to.equal(dirty + 1);
      expect(cache.purgeExpired()).to.equal(0);
    });

    it('a per-entry ttlMs overrides the default; Infinity never expires; a set again restarts the lifetime', () => {
      const clock = manualClock();
      const cache = new NonPersistentCache<string, number>('c', { manager: open(), contents: [], ttlMs: 100, clock: clock.now });
      expect(cache.set('long', 1, { ttlMs: 1000 })).to.equal(cache); // still chainable
      cache.set('forever', 2, { ttlMs: Number.POSITIVE_INFINITY });
      cache.set('short', 3, { ttlMs: 10 });
      cache.set('default', 4, {}); // no ttlMs: the cache's
      expect(cache.expiresAt('forever')).to.equal(undefined);
      clock.advance(50);
      expect([...cache.keys()]).to.deep.equal(['long', 'forever', 'default']);
      cache.set('default', 5); // renewed: 100 ms from now
      clock.advance(60);
      expect([...cache.keys()]).to.deep.equal(['long', 'forever', 'default']);
      clock.advance(1000);
      expect([...cache.keys()]).to.deep.equal(['forever']);
    });

    it('a cache without ttlMs takes a per-entry lifetime, and until then keeps Map\'s own get', () => {
      const clock = manualClock();
      const cache = new PersistentCache<string, number>('c', { manager: open(), contents: [['a', 1]], clock: clock.now });
      expect(cache.get, 'zero cost: Map.prototype.get itself').to.equal(Map.prototype.get);
      expect(cache.has).to.equal(Map.prototype.has);
      cache.set('b', 2, { ttlMs: 10 });
      expect(cache.get).to.not.equal(Map.prototype.get);
      expect(cache.expiresAt('a')).to.equal(undefined);
      clock.advance(10);
      expect([...cache]).to.deep.equal([['a', 1]]);
    });

    it('shows and copies as the Map it is: inspect, new Map(cache), contents: cache', () => {
      const clock = manualClock();
      const manager = open();
      const cache = new NonPersistentCache<string, { n: number }>('shown', { manager, contents: [], ttlMs: 100, clock: clock.now });
      cache.set('a', { n: 1 }).set('b', { n: 2 }, { ttlMs: 1 });
      clock.advance(1);
      expect(inspect(cache)).to.equal("NonPersistentCache Map(1) { 'a' => { n: 1 } }");
      expect(new Map(cache)).to.deep.equal(new Map([['a', { n: 1 }]]));
      const copy = new NonPersistentCache<string, { n: number }>('copy', { manager, contents: cache });
      expect(copy.get('a')).to.deep.equal({ n: 1 });
      expect(copy.size).to.equal(1);
    });

    it('checks its options at construction and on set, naming the cache', () => {
      const manager = open();
      for (const ttlMs of [0, -1, Number.NaN, '10']) {
        expect(() => new NonPersistentCache(`t${String(ttlMs)}`, { manager, ttlMs: ttlMs as number })).to.throw(TypeError, /ttlMs: expected a number of ms > 0/);
      }
      for (const maxEntries of [0, 1.5, -2, '3']) {
        expect(() => new NonPersistentCache(`m${String(maxEntries)}`, { manager, maxEntries: maxEntries as number })).to.throw(TypeError, /maxEntries: expected a whole number/);
      }
      expect(() => new NonPersistentCache('k', { manager, clock: 5 as unknown as () => number })).to.throw(TypeError, /^k: clock/);
      const cache = new NonPersistentCache<string, number>('named', { manager, contents: [] });
      expect(() => cache.set('a', 1, { ttlMs: 0 })).to.throw(TypeError, /^named: set: ttlMs/);
      expect(() => cache.set('a', 1, { ttl: 5 } as never)).to.throw(TypeError, /^named: set: unknown option 'ttl'/);
      expect(() => cache.set('a', 1, '5' as never)).to.throw(TypeError, /^named: set: options/); // a number is a lifetime (Keyv's convention)
      expect(cache.has('a'), 'a refused set writes nothing').to.equal(false);
      expect(() => new CsvCache('csv', { manager, ttlMs: 5 })).to.throw(TypeError, /csv: ttlMs: a CsvCache cannot save expiry times/);
      const csv = new CsvCache<string, string>('csv2', { manager, contents: [] });
      expect(() => csv.set('a', 'b', { ttlMs: 5 })).to.throw(TypeError, /csv2: set: a CsvCache cannot save expiry times/);
      csv.set('a', 'b', { ttlMs: Number.POSITIVE_INFINITY }); // never expiring: nothing to save
    });

    it('is never saved once expired, and a load drops what expired while no process ran (file and journal)', async () => {
      const clock = manualClock();
      const cache = new PersistentCache<string, number>('c', { manager: open(), contents: [], ttlMs: 1000, clock: clock.now });
      cache.set('gone', 1, { ttlMs: 10 });
      cache.set('stays', 2);
      cache.set('never', 3, { ttlMs: Number.POSITIVE_INFINITY });
      clock.advance(10);
      await cache.save(); // whole file
      cache.set('later', 4, { ttlMs: 500 }); // in the journal
      cache.set('short', 5, { ttlMs: 100 });
      await cache.save();
      expect(fs.existsSync(`${cache.path}.journal`)).to.equal(true);
      const t = clock.now();

      const reload = async (at: number) => {
        const c2 = new PersistentCache<string, number>('c', { manager: open(), clock: () => at });
        await c2.load();
        return c2;
      };
      const soon = await reload(t + 50);
      expect(Object.fromEntries(soon)).to.deep.equal({ stays: 2, never: 3, later: 4, short: 5 });
      expect(soon.expiresAt('stays')).to.equal(t - 10 + 1000);
      expect(soon.expiresAt('later')).to.equal(t + 500);
      expect(soon.expiresAt('never')).to.equal(undefined);
      expect(soon.size, 'dropped, not kept in size').to.equal(4);
      expect(soon.dirtyEdits, 'a load that drops expired entries is not an edit').to.equal(0);
      const stopped = await reload(t + 600); // expired while "stopped"
      expect(Object.fromEntries(stopped)).to.deep.equal({ stays: 2, never: 3 });
      expect(stopped.size).to.equal(2);
      const compactedAt = t + 50;
      clock.set(compactedAt);
      await cache.compact();
      expect(fs.existsSync(`${cache.path}.journal`)).to.equal(false);
      const afterCompaction = await reload(t + 200);
      expect(Object.fromEntries(afterCompaction), 'compaction kept the expiry times').to.deep.equal({ stays: 2, never: 3, later: 4 });
      expect(afterCompaction.expiresAt('later')).to.equal(t + 500);
    });

    it('a first per-entry lifetime while a save runs: the save still writes the values it began with', async () => {
      const cache = new PersistentCache<string, string>('midsave', { manager: open(), contents: [] });
      for (let i = 0; i < 200_000; i++) cache.set(`k${i}`, `v${i}`);
      const saving = cache.save();
      await new Promise((resolve) => setImmediate(resolve)); // the save has begun writing
      cache.set('late', 'v-late', { ttlMs: 60_000 }); // the Map now holds slots underneath
      await saving;
      await cache.save();
      const copy = new PersistentCache<string, string>('midsave', { manager: open() });
      await copy.load();
      expect(copy.size).to.equal(200_001);
      for (const i of [0, 1, 99_999, 199_999]) expect(copy.get(`k${i}`)).to.equal(`v${i}`);
      expect(copy.get('late')).to.equal('v-late');
    });

    it('a JsonCache keeps expiry times through a save and load', async () => {
      const clock = manualClock();
      const cache = new JsonCache<string, number>('j', { manager: open(), contents: [['a', 1]], ttlMs: 100, clock: clock.now });
      cache.set('b', 2, { ttlMs: 1000 });
      await cache.save();
      const copy = new JsonCache<string, number>('j', { manager: open(), clock: () => clock.now() + 500 });
      await copy.load();
      expect(Object.fromEntries(copy)).to.deep.equal({ b: 2 });
      expect(copy.expiresAt('b')).to.equal(clock.now() + 1000);
    });

    it('an exit flush (sync) writes expiry times too', () => {
      const clock = manualClock();
      const manager = open();
      const cache = new PersistentCache<string, number>('f', { manager, contents: [], ttlMs: 100, clock: clock.now });
      cache.set('a', 1);
      cache.set('b', 2, { ttlMs: 1 });
      clock.advance(1);
      manager.flushSync();
      const copy = new PersistentCache<string, number>('f', { manager: open(), clock: clock.now });
      copy.loadSync();
      expect(Object.fromEntries(copy)).to.deep.equal({ a: 1 });
      expect(copy.expiresAt('a')).to.equal(clock.now() - 1 + 100);
    });

    it('a timer purges expired entries by itself', async function () {
      this.timeout(5000);
      const cache = new NonPersistentCache<string, number>('p', { manager: open(), contents: [] });
      cache.set('a', 1, { ttlMs: 20 });
      cache.set('b', 2);
      expect(cache.size).to.equal(2);
      await new Promise((resolve) => setTimeout(resolve, 1300)); // the purge waits at least 1 s
      expect(cache.size).to.equal(1);
    });

    it('dependents still cascade from a cache that expires entries', async () => {
      const manager = open();
      const clock = manualClock();
      const base = new PersistentCache<string, number>('base', { manager, contents: [['a', 1]], ttlMs: 100, clock: clock.now });
      const child = new PersistentCache<string, number>('child', { manager, contents: [['x', 1]] });
      base.addDependent(child);
      await base.save();
      await child.save();
      child.set('x', 2); // unsaved: the invalidation drops it
      await base.invalidate();
      expect(child.get('x')).to.equal(1);
      expect(base.get('a')).to.equal(1);
    });
  });

  describe('maxEntries', () => {
    it('evicts the least recently used entry, counting gets, with an evict event', () => {
      const manager = open();
      const evicted: unknown[] = [];
      manager.on('evict', (e) => evicted.push([e.cache, e.key]));
      const cache = new NonPersistentCache<string, number>('lru', { manager, contents: [], maxEntries: 3 });
      cache.set('a', 1).set('b', 2).set('c', 3);
      cache.get('a'); // a is now the most recent: b is the oldest
      cache.set('d', 4);
      expect([...cache.keys()].sort()).to.deep.equal(['a', 'c', 'd']);
      cache.set('c', 30); // a set makes it recent too: a is the oldest now
      cache.set('e', 5);
      expect([...cache.keys()].sort()).to.deep.equal(['c', 'd', 'e']);
      expect(evicted).to.deep.equal([['lru', 'b'], ['lru', 'a']]);
      cache.has('d'); // has() does not make an entry recent: d is still the oldest
      cache.set('f', 6);
      expect(cache.has('d')).to.equal(false);
      expect(cache.size).to.equal(3);
    });

    it('evictions are edits: an AutoSyncCache saves them', async () => {
      const manager = open();
      const cache = new AutoSyncCache<string, number>('auto', { manager, contents: [], maxEntries: 2, timeChecks: [{ seconds: 60, count: 3 }] });
      cache.set('a', 1);
      cache.set('b', 2);
      const before = cache.dirtyEdits;
      cache.set('c', 3); // evicts a: two edits, and the third edit reaches the band
      expect(cache.dirtyEdits).to.equal(before + 2);
      for (let i = 0; i < 50 && cache.dirtyEdits > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(cache.dirtyEdits, 'autosync saved').to.equal(0);
      const copy = new PersistentCache<string, number>('auto', { manager: open() });
      await copy.load();
      expect(Object.fromEntries(copy)).to.deep.equal({ b: 2, c: 3 });
    });

    it('a load of more entries than maxEntries keeps the last ones and saves the evictions', async () => {
      const big = new PersistentCache<string, number>('shrink', { manager: open(), contents: [['a', 1], ['b', 2], ['c', 3], ['d', 4]] });
      await big.save();
      const small = new PersistentCache<string, number>('shrink', { manager: open(), maxEntries: 2 });
      await small.load();
      expect([...small.keys()]).to.deep.equal(['c', 'd']);
      expect(small.dirtyEdits).to.equal(2);
      await small.save();
      const copy = new PersistentCache<string, number>('shrink', { manager: open() });
      await copy.load();
      expect([...copy.keys()]).to.deep.equal(['c', 'd']);
    });

    it('with ttlMs too: expired entries are invisible and count toward the bound until purged', () => {
      const clock = manualClock();
      const cache = new NonPersistentCache<string, number>('both', { manager: open(), contents: [], maxEntries: 2, ttlMs: 100, clock: clock.now });
      cache.set('a', 1);
      clock.advance(50);
      cache.set('b', 2);
      clock.advance(50); // a expired
      expect([...cache.keys()]).to.deep.equal(['b']);
      cache.set('c', 3); // a is the least recent: evicted
      expect([...cache.keys()]).to.deep.equal(['b', 'c']);
      expect(cache.size).to.equal(2);
    });

    it('LazyCache with maxEntries still builds on first access', () => {
      const lazy = new LazyCache<number, number>('lazy', { manager: open(), builder: () => [[1, 1], [2, 4], [3, 9]], maxEntries: 2 });
      expect(lazy.has(3)).to.equal(true);
      expect(lazy.has(1), 'the built contents were bounded too').to.equal(false);
    });
  });

  describe('the book (pure)', () => {
    it('keeps recency and expiry across slot reuse and growth', () => {
      const book = new EntryBook<number, number>(true, 2);
      const slots = new Map<number, number>(); // the cache's Map: key → slot
      for (let i = 0; i < 100; i++) slots.set(i, book.add(i, i, i % 2 === 0 ? 1000 + i : Number.POSITIVE_INFINITY));
      for (let i = 0; i < 50; i++) {
        book.free(slots.get(i) as number);
        slots.delete(i);
      }
      for (let i = 100; i < 150; i++) slots.set(i, book.add(i, i, Number.POSITIVE_INFINITY));
      expect(book.size).to.equal(100);
      expect(book.oldest()).to.equal(50);
      expect(book.read(slots.get(50) as number, () => 0)).to.equal(50);
      expect(book.oldest()).to.equal(51);
      book.update(slots.get(51) as number, -51, Number.POSITIVE_INFINITY);
      expect(book.oldest()).to.equal(52);
      expect(book.value(slots.get(51) as number)).to.equal(-51);
      const doomed = [50, 52, 54, 56, 58, 60, 62, 64, 66, 68, 70, 72, 74];
      expect(book.expired(1075).sort((a, b) => a - b)).to.deep.equal(doomed);
      expect(book.earliestExpiry, 'a lower bound, left alone by frees and queries').to.equal(1000);
      expect(book.read(slots.get(52) as number, () => 1075), 'expired: no value').to.equal(undefined);
      expect(book.read(slots.get(52) as number, () => 1051), 'just before its time: live').to.equal(52);
      // A purge whose remover gives another entry an earlier time than any left keeps that one.
      const removed: number[] = [];
      const purged = book.purge(1075, (key) => {
        removed.push(key);
        book.free(slots.get(key) as number);
        slots.delete(key);
        if (key === 74) book.update(slots.get(120) as number, 120, 1060);
      });
      expect(purged).to.equal(doomed.length);
      expect(removed.sort((a, b) => a - b)).to.deep.equal(doomed);
      expect(book.expiringCount).to.equal(13); // 76..98 even, and 120
      expect(book.earliestExpiry).to.equal(1060);
      expect(book.read(slots.get(120) as number, () => 1060), 'expires at its new time').to.equal(undefined);
      expect(book.read(slots.get(76) as number, () => 1075)).to.equal(76);
      expect(book.purge(1059, () => expect.fail('nothing has expired at 1059'))).to.equal(0);
      expect(book.earliestExpiry).to.equal(1060);
      book.clear();
      expect(book.size).to.equal(0);
      expect(book.oldest()).to.equal(undefined);
    });
    it('a purge whose remover throws leaves the rest expired to reads', () => {
      const book = new EntryBook<number, number>(false);
      const slots = [0, 1, 2].map((i) => book.add(i, i, 100 + i));
      expect(() =>
        book.purge(200, (key) => {
          if (key === 1) throw new Error('remover failed');
          book.free(slots[key] as number);
        }),
      ).to.throw('remover failed');
      expect(book.earliestExpiry).to.be.at.most(101);
      expect(book.read(slots[1] as number, () => 200), 'not removed, still expired').to.equal(undefined);
      expect(book.read(slots[2] as number, () => 200)).to.equal(undefined);
    });
  });

  describe('model (fast-check): a Map plus expiry times and recency', () => {
    type Op =
      | { op: 'set'; key: string; value: number; ttlMs?: number }
      | { op: 'get' | 'has' | 'delete' | 'expiresAt'; key: string }
      | { op: 'advance'; ms: number }
      | { op: 'purge' };
    const keyArb = fc.constantFrom('a', 'b', 'c', 'd', 'e');
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('set' as const), key: keyArb, value: fc.integer(), ttlMs: fc.option(fc.constantFrom(1, 5, 10, Number.POSITIVE_INFINITY), { nil: undefined }) }, { requiredKeys: ['op', 'key', 'value'] }),
      fc.record({ op: fc.constantFrom('get' as const, 'has' as const, 'delete' as const, 'expiresAt' as const), key: keyArb }),
      fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 6 }) }),
      fc.record({ op: fc.constant('purge' as const) }),
    );

    /** The reference: what each operation must do, written as plainly as possible. */
    class Model {
      readonly entries = new Map<string, { value: number; at: number }>();
      recency: string[] = []; // least recent first
      constructor(
        readonly ttlMs: number,
        readonly max: number,
      ) {}
      #touch(key: string): void {
        this.recency = this.recency.filter((k) => k !== key);
        this.recency.push(key);
      }
      #remove(key: string): void {
        this.entries.delete(key);
        this.recency = this.recency.filter((k) => k !== key);
      }
      live(key: string, now: number): boolean {
        const e = this.entries.get(key);
        return e !== undefined && e.at > now;
      }
      set(key: string, value: number, ttlMs: number | undefined, now: number): void {
        const lifetime = ttlMs ?? this.ttlMs;
        const added = !this.entries.has(key);
        this.entries.set(key, { value, at: lifetime === Number.POSITIVE_INFINITY ? lifetime : now + lifetime });
        this.#touch(key);
        if (added && this.entries.size > this.max) this.#remove(this.recency[0] as string);
      }
      get(key: string, now: number): number | undefined {
        if (!this.live(key, now)) return undefined;
        this.#touch(key);
        return this.entries.get(key)?.value;
      }
      delete(key: string, now: number): boolean {
        const visible = this.live(key, now);
        if (this.entries.has(key)) this.#remove(key);
        return visible;
      }
      purge(now: number): number {
        const doomed = [...this.entries].filter(([, e]) => e.at <= now).map(([k]) => k);
        for (const k of doomed) this.#remove(k);
        return doomed.length;
      }
      visible(now: number): Array<[string, number]> {
        return [...this.entries].filter(([, e]) => e.at > now).map(([k, e]) => [k, e.value]);
      }
    }

    /** A set, on the cache and on the model alike. */
    const setBoth = (cache: Map<string, number> & { set(k: string, v: number, o?: { ttlMs: number }): unknown }, model: Model, o: { key: string; value: number; ttlMs?: number }, now: number) => {
      if (o.ttlMs === undefined) cache.set(o.key, o.value);
      else cache.set(o.key, o.value, { ttlMs: o.ttlMs });
      model.set(o.key, o.value, o.ttlMs, now);
    };

    const configArb = fc.record({
      ttlMs: fc.constantFrom(3, 8, Number.POSITIVE_INFINITY),
      max: fc.constantFrom(1, 2, 3, Number.POSITIVE_INFINITY),
    });

    it('every operation answers as the model does, and the visible entries match after each', () => {
      fc.assert(
        fc.property(configArb, fc.array(opArb, { minLength: 10, maxLength: 60 }), ({ ttlMs, max }, ops) => {
          const clock = manualClock(0);
          const manager = open();
          const cache = new NonPersistentCache<string, number>('m', {
            manager,
            contents: [],
            clock: clock.now,
            ...(ttlMs === Number.POSITIVE_INFINITY ? {} : { ttlMs }),
            ...(max === Number.POSITIVE_INFINITY ? {} : { maxEntries: max }),
          });
          const model = new Model(ttlMs, max);
          for (const o of ops) {
            const now = clock.now();
            if (o.op === 'set') setBoth(cache, model, o, now);
            else if (o.op === 'get') expect(cache.get(o.key)).to.equal(model.get(o.key, now));
            else if (o.op === 'has') expect(cache.has(o.key)).to.equal(model.live(o.key, now));
            else if (o.op === 'delete') expect(cache.delete(o.key)).to.equal(model.delete(o.key, now));
            else if (o.op === 'expiresAt') {
              const e = model.entries.get(o.key);
              expect(cache.expiresAt(o.key)).to.equal(e === undefined || e.at <= now || e.at === Number.POSITIVE_INFINITY ? undefined : e.at);
            } else if (o.op === 'advance') clock.advance(o.ms);
            else expect(cache.purgeExpired()).to.equal(model.purge(now));
            expect([...cache], JSON.stringify(o)).to.deep.equal(model.visible(clock.now()));
            expect(cache.size).to.equal(model.entries.size);
          }
          cache.dispose();
        }),
        { numRuns: 300 },
      );
    });

    it('with saves (journal appends, compactions) and evictions in between, a reload gives the visible entries and their expiry times', async () => {
      let run = 0;
      await fc.assert(
        fc.asyncProperty(configArb, fc.array(fc.oneof({ weight: 8, arbitrary: opArb }, { weight: 2, arbitrary: fc.constantFrom({ op: 'save' as const }, { op: 'compact' as const }) }), { minLength: 5, maxLength: 40 }), async ({ ttlMs, max }, ops) => {
          const name = `r${run++}`;
          const clock = manualClock(0);
          const cache = new PersistentCache<string, number>(name, { manager: open(), contents: [], clock: clock.now, ...(ttlMs === Number.POSITIVE_INFINITY ? {} : { ttlMs }), ...(max === Number.POSITIVE_INFINITY ? {} : { maxEntries: max }) });
          const model = new Model(ttlMs, max);
          for (const o of ops) {
            const now = clock.now();
            if (o.op === 'set') setBoth(cache, model, o, now);
            else if (o.op === 'delete') {
              cache.delete(o.key);
              model.delete(o.key, now);
            } else if (o.op === 'advance') clock.advance(o.ms);
            else if (o.op === 'purge') {
              cache.purgeExpired();
              model.purge(now);
            } else if (o.op === 'save') await cache.save();
            else if (o.op === 'compact') await cache.compact();
          }
          await cache.save();
          const copy = new PersistentCache<string, number>(name, { manager: open(), clock: clock.now });
          await copy.load();
          const now = clock.now();
          expect([...copy].sort()).to.deep.equal(model.visible(now).sort());
          for (const [key] of model.visible(now)) {
            const at = model.entries.get(key)?.at;
            expect(copy.expiresAt(key)).to.equal(at === Number.POSITIVE_INFINITY ? undefined : at);
          }
        }),
        { numRuns: 60 },
      );
    });
  });

  describe('memoize maxAgeMs', () => {
    it('computes a result again once it is older than maxAgeMs, also after a restart', async () => {
      let calls = 0;
      const manager = open();
      const square = (n: number) => {
        calls++;
        return n * n;
      };
      const memo = memoize(square, { manager, cacheName: 'memo', maxAgeMs: 80 });
      expect(memo(3)).to.equal(9);
      expect(memo(3)).to.equal(9);
      expect(calls).to.equal(1);
      await manager.getCache('memo').save();
      const again = memoize(square, { manager: open(), cacheName: 'memo', maxAgeMs: 80 });
      expect(again(3), 'from the saved results').to.equal(9);
      expect(calls).to.equal(1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(memo(3)).to.equal(9);
      expect(calls, 'too old: computed again').to.equal(2);
      expect(() => memoize(square, { manager, cacheName: 'memo2', maxAgeMs: 0 })).to.throw(TypeError, /maxAgeMs/);
    });
  });

  describe('CLI', () => {
    it('show prints expiry times; list counts expired entries; export leaves them out', async () => {
      const manager = open();
      const now = Date.now();
      const cache = new PersistentCache<string, number>('shown', { manager, contents: [], clock: () => now });
      cache.set('live', 1, { ttlMs: 3_600_000 });
      cache.set('dies', 2, { ttlMs: 50 });
      cache.set('plain', 3);
      await cache.save();
      await new Promise((resolve) => setTimeout(resolve, 60));
      const show = await runCliHere(['--dir', manager.cacheDirectory, 'show', 'shown']);
      expect(show.code, show.err).to.equal(0);
      expect(show.out).to.contain('3 entries, 1 expired');
      expect(show.out).to.contain(`'live' => 1  (expires ${new Date(now + 3_600_000).toISOString()})`);
      expect(show.out).to.contain(`'dies' => 2  (expired ${new Date(now + 50).toISOString()})`);
      expect(show.out).to.match(/'plain' => 3\n/);
      const list = await runCliHere(['--dir', manager.cacheDirectory, 'list', '--json']);
      const row = (JSON.parse(list.out) as Array<{ name: string; expired: number; entries: number }>).find((c) => c.name === 'shown');
      expect(row).to.include({ entries: 3, expired: 1 });
      const exported = await runCliHere(['--dir', manager.cacheDirectory, 'export', 'shown', '--format', 'json']);
      expect(JSON.parse(exported.out)).to.deep.equal([['live', 1], ['plain', 3]]);
    });
  });
});

describe("set(key, value, ttl) with a number (Keyv's convention)", () => {
  let manager: import('../lib').CacheManager;
  useTempManager((m) => (manager = m));

  it('takes a number of ms as the lifetime, and one ≤ 0 as already expired (the key is removed)', async () => {
    let now = 1_000_000;
    for (const options of [{}, { maxEntries: 10 }]) {
      const cache = await PersistentCache.open<string, number>(`n${Object.keys(options).length}`, { manager, clock: () => now, ...options });
      cache.set('a', 1, 500);
      expect(cache.expiresAt('a')).to.equal(now + 500);
      cache.set('b', 2);
      cache.set('b', 3, 0);
      expect(cache.has('b')).to.equal(false);
      cache.set('c', 4, -5);
      expect(cache.has('c')).to.equal(false);
      now += 600;
      expect(cache.get('a')).to.equal(undefined);
      expect(() => cache.set('d', 1, Number.NaN)).to.throw(TypeError);
    }
  });
});
