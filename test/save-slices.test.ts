import { expect } from 'chai';
import * as fs from 'node:fs';
import { type CacheManager, CorruptCacheFileError, type FileStoreOptions, PersistentCache } from '../lib';
import { encodePayload } from '../lib/store/file-format';
import { FileStore, LazyFrames } from '../lib/store/file-store';
import { useManagersOnOneDirectory } from './helpers';

// Saves in the default configuration (journal on): what a save writes, and that a record
// encoded in slices lands whole, as the map was when the save began.
describe('saves in slices (journal on)', () => {
  const managers = useManagersOnOneDirectory('s', true);
  const open = (fileStore: FileStoreOptions = {}) => managers.open('s', fileStore);
  const reload = managers.reload;
  const compactions = (m: CacheManager) => {
    const store = m.store as FileStore;
    const calls = { n: 0 };
    const compact = store.compact.bind(store);
    store.compact = (...args: Parameters<FileStore['compact']>) => {
      calls.n++;
      return compact(...args);
    };
    return calls;
  };
  const journalOf = (cache: { readonly path: string }) => `${cache.path}.journal`;

  it('the first save of a new, filled cache writes one file and no journal, and starts no compaction', async () => {
    const m = open();
    const calls = compactions(m);
    const cache = await PersistentCache.open<string, number>('fresh', { manager: m });
    for (let i = 0; i < 20_000; i++) cache.set(`k${i}`, i);
    await cache.save();
    await cache.backgroundSettled();
    expect(fs.existsSync(journalOf(cache))).to.equal(false);
    expect(calls.n).to.equal(0);
    expect(await reload('fresh')).to.deep.equal(new Map(cache));
  });

  it('writes the whole file instead of an append that would be compacted at once (memory in step)', async () => {
    const m = open({ compactMinBytes: 0 });
    const calls = compactions(m);
    const cache = new PersistentCache<string, number>('many', { manager: m, contents: {} });
    for (let i = 0; i < 10_000; i++) cache.set(`k${i}`, i);
    await cache.save();
    for (let i = 0; i < 2_000; i++) cache.set(`k${i}`, -i); // 20% of the base: past the 5% share
    cache.delete('k9999');
    await cache.save();
    await cache.backgroundSettled();
    expect(fs.existsSync(journalOf(cache))).to.equal(false);
    expect(calls.n).to.equal(0);
    expect(await reload('many')).to.deep.equal(new Map(cache));
    cache.set('k5000', 0); // a small change still appends
    await cache.save();
    expect(fs.existsSync(journalOf(cache))).to.equal(true);
    expect(await reload('many')).to.deep.equal(new Map(cache));
  });

  it('contents built after finding nothing saved still merge with what another process saved meanwhile', async () => {
    const mine = await PersistentCache.open<string, number>('shared', { manager: open() });
    const theirs = await PersistentCache.open<string, number>('shared', { manager: open() });
    theirs.set('theirs', -1);
    await theirs.save();
    for (let i = 0; i < 20_000; i++) mine.set(`k${i}`, i);
    mine.delete('k0');
    await mine.save();
    const saved = await reload('shared');
    expect(saved.get('theirs')).to.equal(-1);
    expect(saved.size).to.equal(20_000); // 19,999 of mine and theirs
    expect(saved.has('k0')).to.equal(false);
  });

  it('a record encoded in many slices lands whole, as the map was when the save began, while the map changes between slices', async () => {
    const m = open({ sliceMs: 0, compactMinBytes: 1e12 }); // a yield after every part
    const cache = new PersistentCache<string, number>('live', { manager: m, contents: {} });
    for (let i = 0; i < 200_000; i++) cache.set(`k${i}`, i);
    await cache.save();
    // 8,000 changes (4% of the base: an append), in four parts of at most 2,048.
    for (let i = 0; i < 8_000; i++) cache.set(`k${i * 7}`, -i);
    for (let i = 0; i < 50; i++) cache.delete(`k${i * 7 + 1}`);
    cache.set('added', 1);
    const atStart = new Map(cache);
    let done = false;
    let editsDuring = 0;
    const saving = cache.save().finally(() => (done = true));
    for (let round = 0; !done; round++) {
      await new Promise((resolve) => setImmediate(resolve));
      if (done) break;
      // Changed keys changed again (some before their part is encoded, some after), deleted,
      // re-added; new keys; a key deleted at the start set again.
      cache.set(`k${(round * 97) % 8_000 * 7}`, 1e9 + round);
      cache.delete(`k${((round * 31) % 8_000) * 7}`);
      cache.set(`k${round * 7 + 1}`, 2e9);
      cache.set(`new${round}`, round);
      editsDuring++;
    }
    await saving;
    expect(editsDuring).to.be.greaterThan(1);
    expect(fs.existsSync(journalOf(cache))).to.equal(true);
    expect(await reload('live')).to.deep.equal(atStart);
    await cache.save();
    expect(await reload('live')).to.deep.equal(new Map(cache));
  });

  it('a follower reads new records a part at a time, asynchronously, and never half a record', async () => {
    const writer = new PersistentCache<string, number>('followed', { manager: open({ compactMinBytes: 2 ** 50, compactShare: 1e6 }), contents: { a: 1 } });
    for (let i = 0; i < 20_000; i++) writer.set(`base${i}`, i); // so 5,000 changes are a record, not "all changed"
    await writer.save();
    const follower = open();
    const store = follower.store as FileStore;
    const reader = new PersistentCache<string, number>('followed', { manager: follower });
    expect(await reader.load()).to.equal(true); // the store now knows where the journal ends
    for (let i = 0; i < 5_000; i++) writer.set(`k${i}`, i);
    writer.delete('a');
    await writer.save(); // one record of three parts (2,048 changes a part at most)
    const journal = journalOf(writer);
    const whole = fs.readFileSync(journal);
    const update = await store.followSince('followed', 'throw', () => undefined);
    if (update === undefined || !('parts' in update)) throw new Error('expected parts');
    const parts = [];
    for await (const part of update.parts) parts.push(part);
    expect(parts.length).to.equal(3);
    expect(parts.reduce((n, p) => n + p.sets.length / 2, 0)).to.equal(5_000);
    expect(parts.flatMap((p) => p.deletes)).to.deep.equal(['a']);
    expect(await store.followSince('followed', 'throw', () => undefined)).to.equal(undefined); // nothing new
    // A record being appended (its last part not there yet) is not handed out.
    for (let i = 0; i < 5_000; i++) writer.set(`k${i}`, -i);
    await writer.save();
    const longer = fs.readFileSync(journal);
    fs.writeFileSync(journal, longer.subarray(0, whole.length + Math.floor((longer.length - whole.length) / 2)));
    const half = await store.followSince('followed', 'throw', () => undefined);
    const halfParts = [];
    if (half !== undefined && 'parts' in half) for await (const part of half.parts) halfParts.push(part);
    expect(halfParts).to.deep.equal([]);
    fs.writeFileSync(journal, longer); // its last part lands: now it is read, from where it starts
    const rest = await store.followSince('followed', 'throw', () => undefined);
    if (rest === undefined || !('parts' in rest)) throw new Error('expected parts');
    let sets = 0;
    for await (const part of rest.parts) sets += part.sets.length / 2;
    expect(sets).to.equal(5_000);
  });

  it('a follower reads a base another process rewrote in slices, checked whole, its frames deserialized only as they are taken', async () => {
    const writer = new PersistentCache<string, number>('rewritten', { manager: open({ frameEntries: 16 }), contents: {} });
    for (let i = 0; i < 20_000; i++) writer.set(`k${i}`, i);
    await writer.save();
    const follower = open({ sliceMs: 0 });
    const store = follower.store as FileStore;
    const reader = new PersistentCache<string, number>('rewritten', { manager: follower });
    expect(await reader.load()).to.equal(true);
    writer.clear();
    for (let i = 0; i < 20_000; i++) writer.set(`k${i}`, -i);
    await writer.save(); // a new base, of 1,250 frames
    let turns = 0;
    let watching = true;
    const watch = () => {
      turns++;
      if (watching) setImmediate(watch);
    };
    setImmediate(watch);
    const update = await store.followSince('rewritten', 'throw', () => undefined);
    watching = false;
    if (update === undefined || !('whole' in update)) throw new Error('expected the whole state');
    expect(turns).to.be.greaterThan(10); // the event loop turned while the file was read and checked
    expect(update.whole.batches).to.be.instanceOf(LazyFrames);
    const read = new Map<unknown, unknown>();
    update.whole.fillInto(read);
    expect(read).to.deep.equal(new Map(writer));
  });

  it('a frame that passed its checksum but does not deserialize throws when it is taken, naming the file', () => {
    const frames = new LazyFrames('c', '/dir/c.v8');
    frames.add(encodePayload(['a', 1]), 1);
    // v8's header, a dense array of 2 elements, then bytes no value starts with.
    frames.add(Buffer.from([0xff, 0x0f, 0x41, 0x02, 0xfe, 0xfe]), 1);
    const taken: unknown[][] = [];
    expect(() => {
      for (const pairs of frames) taken.push(pairs);
    }).to.throw(CorruptCacheFileError, /frame 1 does not deserialize/);
    expect(taken).to.deep.equal([['a', 1]]);
  });
});
