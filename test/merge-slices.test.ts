import { expect } from 'chai';
import { type CacheManager, PersistentCache } from '../lib';
import type { JournalRecord } from '../lib/store/journal';
import { useTempManager } from './helpers';

// A follower's merge of what another process saved runs in slices; what it must never do is
// overwrite a key this process edited meanwhile (an unsaved edit here is this process's to save).

class Merging<K, V> extends PersistentCache<K, V> {
  merge(read: () => Promise<{ parts: AsyncIterable<JournalRecord> }>): Promise<boolean> {
    return this.mergeSaved(read);
  }
}

describe('merging what another process saved (mergeSaved, in slices)', () => {
  let manager: CacheManager;
  useTempManager((m) => (manager = m));

  it('applies every part, and keeps a key edited here between two parts', async () => {
    const cache = (await Merging.open<string, number>('m', { manager })) as Merging<string, number>;
    cache.set('mine', 0);
    await cache.save();
    async function* parts(): AsyncGenerator<JournalRecord> {
      yield { sets: ['a', 1, 'mine', 1], deletes: [], generation: undefined };
      cache.set('mine', 42); // an edit here while the merge reads the next part
      yield { sets: ['b', 2, 'mine', 2], deletes: ['a'], generation: 'theirs' };
    }
    expect(await cache.merge(async () => ({ parts: parts() }))).to.equal(true);
    expect(cache.get('mine')).to.equal(42);
    expect(cache.get('b')).to.equal(2);
    expect(cache.has('a')).to.equal(false);
    expect(cache.generation).to.equal('theirs');
    expect(cache.dirtyEdits).to.equal(1); // the merge is no edit; the set here is
  });

  it('yields to the event loop while it applies a large update', async () => {
    const cache = (await Merging.open<string, number>('big', { manager })) as Merging<string, number>;
    const sets: unknown[] = [];
    for (let i = 0; i < 300_000; i++) sets.push(`k${i}`, i);
    let turns = 0;
    const ticking = setInterval(() => turns++, 0);
    async function* parts(): AsyncGenerator<JournalRecord> {
      yield { sets, deletes: [], generation: undefined };
    }
    try {
      await cache.merge(async () => ({ parts: parts() }));
    } finally {
      clearInterval(ticking);
    }
    expect(cache.size).to.equal(300_000);
    expect(turns).to.be.greaterThan(0);
  });
});
