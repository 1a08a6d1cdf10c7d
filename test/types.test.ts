// Type tests: `npm test` runs `tsc -p .` over this file first, so a signature that loses the
// precise class (or accepts what it must not) fails the run. The runtime checks pin the same.
import { expect } from 'chai';
import {
  AutoSyncCache,
  CacheConflictError,
  type CacheManager,
  CacheMap,
  CsvCache,
  JsonCache,
  LazyCache,
  NonPersistentCache,
  PersistentCache,
} from '../lib';
import { useTempManager } from './helpers';

describe('public types', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  it('registerCache and registerCustomCache resolve the class they create', async () => {
    const auto: AutoSyncCache<string, number> = await manager.registerCache<string, number>('a');
    const memory: NonPersistentCache<string, number> = await manager.registerCustomCache<string, number>('n', { persistent: false });
    const file: PersistentCache<string, number> = await manager.registerCustomCache<string, number>('p', { autosync: false });
    const auto2: AutoSyncCache<string, number> = await manager.registerCustomCache<string, number>('s', {});
    const lazy: LazyCache<string, number> = await manager.registerCustomCache('l', { cache: new LazyCache<string, number>('l', { manager }) });
    expect([auto, memory, file, auto2, lazy].map((c) => c.constructor.name)).to.deep.equal([
      'AutoSyncCache',
      'NonPersistentCache',
      'PersistentCache',
      'AutoSyncCache',
      'LazyCache',
    ]);
    // @ts-expect-error an autosync: false cache is not an AutoSyncCache
    const wrong: AutoSyncCache<string, number> = await manager.registerCustomCache<string, number>('w', { autosync: false });
    expect(wrong).to.not.be.instanceOf(AutoSyncCache);
  });

  it('getCache and retrieveCache take the class to check against', async () => {
    await manager.registerCache<string, number>('a');
    const got: AutoSyncCache<string, number> = manager.getCache('a', AutoSyncCache<string, number>);
    const retrieved: PersistentCache<string, number> = await manager.retrieveCache('a', PersistentCache<string, number>);
    expect(got).to.equal(retrieved);
    // @ts-expect-error without a class, getCache only knows it is a CacheMap
    const untyped: AutoSyncCache<string, number> = manager.getCache<string, number>('a');
    expect(untyped).to.be.instanceOf(CacheMap);
    expect(() => manager.getCache('a', NonPersistentCache)).to.throw(CacheConflictError);
  });

  it('every X.open() resolves an X', async () => {
    const csv: CsvCache<string, string> = await CsvCache.open<string, string>('csv', { manager });
    const json: JsonCache<string, number> = await JsonCache.open<string, number>('json', { manager });
    const lazy: LazyCache<string, number> = await LazyCache.open<string, number>('lazy', { manager });
    expect([csv, json, lazy].map((c) => c.constructor.name)).to.deep.equal(['CsvCache', 'JsonCache', 'LazyCache']);
  });

  it('a typed cache can be a dependent', () => {
    const parent = new PersistentCache<string, number>('parent', { manager, contents: {} });
    const child = new PersistentCache<string, Date>('child', { manager, contents: {} });
    parent.addDependent(child);
    expect([...parent.dependents]).to.deep.equal(['child']);
  });
});
