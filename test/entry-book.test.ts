import { expect } from 'chai';
import fc from 'fast-check';
import { EntryBook } from '../lib/expiry/entry-book';

describe('EntryBook recency (the list behind maxEntries)', () => {
  type Op = { op: 'add' | 'update' | 'read' | 'free'; key: number };
  const opArb: fc.Arbitrary<Op> = fc.record({ op: fc.constantFrom('add' as const, 'update' as const, 'read' as const, 'free' as const), key: fc.integer({ min: 0, max: 5 }) });

  it('keeps least-recent-first order through adds, updates, reads and frees (slots reused), against an array model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 20, maxLength: 80 }), (ops) => {
        const book = new EntryBook<number, number>(true, 2); // small: grows along the way
        const slots = new Map<number, number>();
        let model: number[] = []; // least recent first
        const touch = (key: number) => {
          model = model.filter((k) => k !== key);
          model.push(key);
        };
        for (const { op, key } of ops) {
          const slot = slots.get(key);
          if (slot === undefined) {
            if (op !== 'add') continue;
            slots.set(key, book.add(key, key * 10, Number.POSITIVE_INFINITY));
            touch(key);
          } else if (op === 'free') {
            book.free(slot);
            slots.delete(key);
            model = model.filter((k) => k !== key);
          } else if (op === 'read') {
            expect(book.read(slot, () => 0)).to.equal(key * 10);
            touch(key);
          } else {
            book.update(slot, key * 10, Number.POSITIVE_INFINITY);
            touch(key);
          }
          expect(book.oldest()).to.equal(model[0]);
          expect(book.size).to.equal(model.length);
        }
        // The whole order: evict from the oldest until empty.
        const drained: number[] = [];
        for (let key = book.oldest(); key !== undefined; key = book.oldest()) {
          drained.push(key);
          book.free(slots.get(key) as number);
          slots.delete(key);
        }
        expect(drained).to.deep.equal(model);
      }),
      { numRuns: 500 },
    );
  });
});
