import { expect } from 'chai';
import { KeySet } from '../lib/cache-merge';
import { type CacheManager, PersistentCache } from '../lib';
import { useTempManager } from './helpers';

// The whole-state merge remembers the saved keys in a KeySet (a Set split into shards): it
// must answer exactly as one Set would, for every kind of key a Map takes.
describe('KeySet (the keys a whole-state merge saw)', () => {
  it('answers as a Set does, for strings, numbers and objects', () => {
    const object = {};
    const keys: unknown[] = ['', 'a', 'key-1', 'key-10', 'key-01', 0, -0, 1, -1, 2 ** 40 + 3, 1.5, NaN, Infinity, object, null, undefined, true, 10n];
    for (let i = 0; i < 5_000; i++) keys.push(`key-${i}`, i);
    const mine = new KeySet();
    const plain = new Set<unknown>();
    for (const key of keys) {
      mine.add(key);
      plain.add(key);
    }
    for (const key of ['key-7', 7, 1.5, NaN, object]) {
      mine.delete(key);
      plain.delete(key);
    }
    const probes: unknown[] = [...keys, 'key-5000', 5000, 2.5, {}, false, 11n, '0', -(2 ** 40) - 3];
    for (const key of probes) expect(mine.has(key), String(key)).to.equal(plain.has(key));
  });
});

class Merging<K, V> extends PersistentCache<K, V> {
  merge(whole: Map<unknown, unknown>): Promise<boolean> {
    return this.mergeSaved(async () => ({ whole }));
  }
}

describe('a whole-state merge', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  it('removes the keys the saved state lacks, and only those, whatever their kind', async () => {
    const cache = (await Merging.open<unknown, number>('whole', { manager })) as Merging<unknown, number>;
    for (let i = 0; i < 1_000; i++) cache.set(i % 2 === 0 ? `key-${i}` : i, i);
    await cache.save();
    const saved = new Map<unknown, unknown>();
    for (let i = 0; i < 1_000; i++) if (i % 3 !== 0) saved.set(i % 2 === 0 ? `key-${i}` : i, -i);
    expect(await cache.merge(saved)).to.equal(true);
    expect(cache.size).to.equal(saved.size);
    for (const [key, value] of saved) expect(cache.get(key)).to.equal(value);
  });
});
