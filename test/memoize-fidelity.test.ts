import { expect } from 'chai';
import {
  CacheManager,
  CacheSerializationError,
  PersistentCache,
  UnkeyableArgumentsError,
  memoize,
} from '../lib';
import { encodeArgs } from '../lib/memoize/arg-key';
import { runCliHere, runFixture, useManagersOnOneDirectory } from './helpers';

describe('memoize: keys, inputs and results the peers got wrong', () => {
  const managersOnDir = useManagersOnOneDirectory('memo');
  const open = managersOnDir.open;

  describe('built-ins are keyed by their state', () => {
    const distinct: Array<[string, unknown, unknown]> = [
      ['URL', new URL('https://a.example/x'), new URL('https://b.example/y')],
      ['URLSearchParams', new URLSearchParams('a=1'), new URLSearchParams('a=2')],
      ['Error', new Error('one'), new Error('two')],
      ['TypeError vs Error', new TypeError('x'), new Error('x')],
      ['Number', new Number(1), new Number(2)],
      ['String', new String('a'), new String('b')],
      ['Boolean', new Boolean(true), new Boolean(false)],
      ['ArrayBuffer', new Uint8Array([1]).buffer, new Uint8Array([2]).buffer],
    ];
    for (const [what, a, b] of distinct) {
      it(`gives two different ${what}s two keys`, () => {
        const ka = encodeArgs([a]);
        const kb = encodeArgs([b]);
        expect(typeof ka).to.equal('string');
        expect(ka).to.not.equal(kb);
        expect(encodeArgs([a])).to.equal(ka); // and the same one twice
      });
    }

    it('returns the right host for each URL (the silent wrong result of before)', () => {
      const host = memoize((u: URL) => u.host, { manager: open() });
      expect(host(new URL('https://a.example/x'))).to.equal('a.example');
      expect(host(new URL('https://b.example/y'))).to.equal('b.example');
    });

    it('refuses an instance whose state is private (EUNKEYABLE, naming the key option)', () => {
      class Account {
        readonly #balance: number;
        constructor(balance: number) {
          this.#balance = balance;
        }
        get balance(): number {
          return this.#balance;
        }
      }
      const balance = memoize((a: Account) => a.balance, { manager: open() });
      expect(() => balance(new Account(1))).to.throw(UnkeyableArgumentsError, /Account instance .* invisible .*key option/);
      const keyed = memoize((a: Account) => a.balance, { manager: open(), name: 'keyed', key: (a: Account) => a.balance });
      expect(keyed(new Account(1))).to.equal(1);
      expect(keyed(new Account(2))).to.equal(2);
    });

    it('names the depth of a structure nested too deep, and a cycle, instead of overflowing the stack', () => {
      let list: { next?: unknown } = {};
      for (let i = 0; i < 2000; i++) list = { next: list };
      const length = memoize((_l: unknown) => 1, { manager: open() });
      expect(() => length(list)).to.throw(UnkeyableArgumentsError, /nested deeper than 1000 levels/);
      const cyclic: { self?: unknown } = {};
      cyclic.self = cyclic;
      expect(() => length(cyclic)).to.throw(UnkeyableArgumentsError, /cycle/);
      let shallow: { next?: unknown } = {};
      for (let i = 0; i < 900; i++) shallow = { next: shallow };
      expect(length(shallow)).to.equal(1);
    });
  });

  describe('two closures with one name and source', () => {
    it('is an error at the second memoize() call, asking for the name option', () => {
      const manager = open();
      const make = (rate: number) =>
        function convert(x: number): number {
          return x * rate;
        };
      const eur = memoize(make(2), { manager });
      expect(() => memoize(make(3), { manager })).to.throw(TypeError, /already memoized .* name option/);
      const usd = memoize(make(3), { manager, name: 'convertUsd' });
      expect([eur(10), usd(10)]).to.deep.equal([20, 30]);
      eur.dispose();
      expect(() => memoize(make(4), { manager })).to.not.throw(); // the name is free again
    });

    it('memoizing the same function object twice is fine', () => {
      const manager = open();
      const f = (x: number) => x + 1;
      memoize(f, { manager });
      expect(() => memoize(f, { manager })).to.not.throw();
    });
  });

  describe('a result the store cannot write', () => {
    it('is refused at the call that made it; the other functions are still saved', async () => {
      const manager = open();
      const good = memoize((x: number) => x * 2, { manager, name: 'good' });
      const bad = memoize((_x: number) => () => 'a function', { manager, name: 'bad' });
      good(21);
      expect(() => bad(1)).to.throw(CacheSerializationError, /^memoize: .*bad/);
      await manager.saveAllCacheContents(); // would fail on the function before
      const later = open();
      const again = memoize((x: number) => x * 2, { manager: later, name: 'good' });
      let calls = 0;
      const counted = memoize(
        (x: number) => {
          calls++;
          return x;
        },
        { manager: later, name: 'counted' },
      );
      expect(again(21)).to.equal(42);
      counted(1);
      expect(calls).to.equal(1);
    });

    it('rejects the promise of an async function whose result cannot be written', async () => {
      const bad = memoize(async () => Symbol('no'), { manager: open(), name: 'asyncBad' });
      let caught: unknown;
      await bad().catch((e: unknown) => (caught = e));
      expect(caught).to.be.instanceOf(CacheSerializationError);
    });
  });

  describe('dependsOn holds across processes and the CLI', () => {
    // The memoized function: reads the rate from the input cache, counts its real calls.
    let calls = 0;
    const define = (manager: CacheManager, raw: PersistentCache<string, number>) =>
      memoize(
        function price(x: number): number {
          calls++;
          return x * (raw.get('rate') as number);
        },
        { manager, dependsOn: ['raw'] },
      );
    const openRaw = (manager: CacheManager) =>
      PersistentCache.open<string, number>('raw', { manager, builder: () => ({ rate: 2 }) });

    async function firstRun(): Promise<void> {
      const manager = open();
      const raw = await openRaw(manager);
      expect(define(manager, raw)(10)).to.equal(20);
      await manager.close();
    }

    beforeEach(() => {
      calls = 0;
    });

    it('reuses a result when nothing was rebuilt (the control)', async () => {
      await firstRun();
      const manager = open();
      const raw = await openRaw(manager);
      expect(define(manager, raw)(10)).to.equal(20);
      expect(calls).to.equal(1);
    });

    it('recomputes after the input was rebuilt before memoize() was called', async () => {
      await firstRun();
      const manager = open();
      const raw = await openRaw(manager);
      raw.builder = () => ({ rate: 5 });
      await raw.invalidateAndRebuild();
      expect(define(manager, raw)(10)).to.equal(50);
      expect(calls).to.equal(2);
    });

    it('recomputes after another process rebuilt the input without defining the function', async () => {
      await firstRun();
      const child = await runFixture('rebuild-input.ts', [managersOnDir.dir()]);
      expect(child.code, child.stderr).to.equal(0);
      const manager = open();
      const raw = await openRaw(manager);
      expect(define(manager, raw)(10)).to.equal(30);
      expect(calls).to.equal(2);
    });

    it('recomputes after `depcache invalidate raw`, and the graph shows what the results depend on', async () => {
      await firstRun();
      const cacheDir = `${managersOnDir.dir()}/memo`;
      const graph = await runCliHere(['--dir', cacheDir, 'graph']);
      expect(graph.out).to.match(/memoize \(AutoSyncCache\) ⇠ results computed over raw/);
      expect((await runCliHere(['--dir', cacheDir, 'invalidate', 'raw'])).code).to.equal(0);
      const manager = open();
      const raw = await openRaw(manager);
      expect(define(manager, raw)(10)).to.equal(20);
      expect(calls).to.equal(2); // same rate, but a rebuilt input: computed again
    });
  });
});
