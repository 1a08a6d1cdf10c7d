import { expect } from 'chai';
import {
  AutoSyncCache,
  CacheContentsMissingError,
  type CacheManager,
  ManagerClosedError,
  NonPersistentCache,
  PersistentCache,
  type SetOptions,
} from '../lib';
import { useTempManager } from './helpers';

// A user's subclass: its overrides of get/set/delete/clear run on every call, whatever state the
// cache is in (expiry, bounds, no contents, a closed manager), and its super calls do the work.
class Audited<K, V> extends PersistentCache<K, V> {
  readonly calls: string[] = [];
  override get(key: K): V | undefined {
    this.calls.push(`get ${String(key)}`);
    return super.get(key);
  }
  override set(key: K, value: V, options?: SetOptions): this {
    this.calls?.push(`set ${String(key)}`); // runs before the fields exist? never: contents go in without set()
    return super.set(key, value, options);
  }
  override delete(key: K): boolean {
    this.calls.push(`delete ${String(key)}`);
    return super.delete(key);
  }
  override clear(): void {
    this.calls.push('clear');
    super.clear();
  }
}

class Deeper<K, V> extends Audited<K, V> {
  override set(key: K, value: V, options?: SetOptions): this {
    this.calls.push(`deeper ${String(key)}`);
    return super.set(key, value, options);
  }
}

describe('subclasses of the cache classes', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  it('Sub.open() gives an instance of Sub, loaded from what it saved', async () => {
    const a = await Audited.open<string, number>('x', { manager });
    expect(a).to.be.instanceOf(Audited);
    a.set('k', 1);
    await a.save();
    const auto = await (class Mine extends AutoSyncCache<string, number> {}).open('y', { manager });
    expect(auto.constructor.name).to.equal('Mine');
  });

  it('runs the overrides on every call, plain and with expiry and bounds from the start', async () => {
    for (const options of [{}, { ttlMs: 60_000 }, { maxEntries: 2 }, { ttlMs: 60_000, maxEntries: 2 }]) {
      const name = `c${JSON.stringify(options).replace(/\W/g, '')}`;
      const c = (await Audited.open<string, number>(name, { manager, ...options })) as Audited<string, number>;
      c.set('a', 1);
      c.set('b', 2);
      expect(c.get('a'), JSON.stringify(options)).to.equal(1);
      expect(c.delete('b')).to.equal(true);
      expect(c.has('b')).to.equal(false);
      c.clear();
      expect(c.size).to.equal(0);
      expect(c.calls).to.deep.equal(['set a', 'set b', 'get a', 'delete b', 'clear']);
    }
  });

  it('keeps running them once a per-entry ttl turns expiry on, and evicts through the book', async () => {
    const c = (await Audited.open<string, number>('t', { manager, maxEntries: 2 })) as Audited<string, number>;
    c.set('a', 1, { ttlMs: 60_000 });
    c.set('b', 2);
    c.set('c', 3);
    expect(c.has('a')).to.equal(false); // the least recently used went
    expect(c.get('c')).to.equal(3);
    expect([...c.keys()]).to.deep.equal(['b', 'c']);
    expect(c.calls).to.deep.equal(['set a', 'set b', 'set c', 'get c']);
    await c.save();
    const again = new Map(await manager.store.read('t', 'throw', () => undefined));
    expect([...again.keys()]).to.deep.equal(['b', 'c']);
  });

  it('a deeper subclass runs every level', async () => {
    const c = (await Deeper.open<string, number>('d', { manager, ttlMs: 60_000 })) as Deeper<string, number>;
    c.set('a', 1);
    expect(c.get('a')).to.equal(1);
    expect(c.calls).to.deep.equal(['deeper a', 'set a', 'get a']);
  });

  it('runs the override, then refuses, on a cache without contents and after the manager closed', async () => {
    const empty = new Audited<string, number>('e', { manager });
    expect(() => empty.set('a', 1)).to.throw(CacheContentsMissingError);
    expect(() => empty.get('a')).to.throw(CacheContentsMissingError);
    expect(empty.calls).to.deep.equal(['set a', 'get a']);
    const c = (await Audited.open<string, number>('z', { manager, ttlMs: 60_000 })) as Audited<string, number>;
    c.set('a', 1);
    await manager.close();
    expect(() => c.set('b', 2)).to.throw(ManagerClosedError);
    expect(c.get('a')).to.equal(1); // reads keep working
    expect(c.calls).to.deep.equal(['set a', 'set b', 'get a']);
  });

  it('an override of set on an instance that calls the class method runs once, with expiry too', async () => {
    const c = await NonPersistentCache.open<string, number>('i', { manager, maxEntries: 10 });
    let calls = 0;
    const own = NonPersistentCache.prototype.set;
    c.set = function (this: typeof c, key: string, value: number, options?: SetOptions) {
      calls++;
      return own.call(this, key, value, options);
    } as typeof c.set;
    c.set('a', 1, { ttlMs: 60_000 });
    c.set('b', 2);
    expect(calls).to.equal(2);
    expect(c.get('a')).to.equal(1);
    expect(c.get('b')).to.equal(2);
    expect(c.expiresAt('a')).to.be.a('number');
  });
});

describe('subclasses: one dispatch layer per class', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  it('keeps the prototype chain as deep however many instances are made, and shows them as Maps', async () => {
    class Mine<K, V> extends NonPersistentCache<K, V> {}
    const depth = (o: object) => {
      let n = 0;
      for (let p = Object.getPrototypeOf(o) as object | null; p !== null; p = Object.getPrototypeOf(p) as object | null) n++;
      return n;
    };
    const first = new Mine<string, number>('m0', { manager, contents: [['a', 1]] });
    const depths = [depth(first)];
    for (let i = 1; i < 5; i++) depths.push(depth(new Mine(`m${i}`, { manager })));
    expect(new Set(depths).size).to.equal(1);
    expect((await import('node:util')).inspect(first)).to.equal("Mine Map(1) { 'a' => 1 }");
  });
});
