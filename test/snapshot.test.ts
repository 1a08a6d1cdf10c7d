import { expect } from 'chai';
import fc from 'fast-check';
import { LiveSnapshot } from '../lib/store/snapshot';

type Op = { kind: 'set' | 'delete' | 'add' | 'readd' | 'clear' | 'fill'; key: number; value: number };

/** Applies ops to `map` through the snapshot's preserve protocol, reading it between ops. */
function drain(map: Map<string, number>, ops: Op[], per: number): Map<unknown, unknown> {
  const snapshot = new LiveSnapshot(map);
  const out = new Map<unknown, unknown>();
  const buf: unknown[] = [];
  let done = false;
  const read = () => {
    if (done) return;
    buf.length = 0;
    const n = snapshot.fill(buf, per);
    expect(buf.length).to.equal(2 * n);
    for (let i = 0; i < n; i++) {
      const k = buf[2 * i];
      // A key may come twice; it must come with the same value.
      if (out.has(k)) expect(out.get(k)).to.equal(buf[2 * i + 1]);
      out.set(k, buf[2 * i + 1]);
    }
    if (n < per) done = true;
  };
  for (const op of ops) {
    const key = `k${op.key}`;
    if (op.kind === 'fill') read();
    else if (op.kind === 'clear') {
      snapshot.preserveAll();
      map.clear();
    } else if (op.kind === 'delete') {
      snapshot.preserve(key);
      map.delete(key);
    } else {
      const k = op.kind === 'add' ? `new${op.key}` : key;
      snapshot.preserve(k);
      map.set(k, op.value);
    }
  }
  while (!done) read();
  return out;
}

describe('LiveSnapshot', () => {
  it('property: yields the map as it was, whatever changes between reads', () => {
    const op = fc.record({
      kind: fc.constantFrom<Op['kind']>('set', 'delete', 'add', 'readd', 'fill', 'fill', 'fill', 'clear'),
      key: fc.integer({ min: 0, max: 30 }),
      value: fc.integer(),
    });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 30 }), fc.array(op, { minLength: 10, maxLength: 60 }), fc.integer({ min: 1, max: 6 }), (size, ops, per) => {
        const map = new Map<string, number>();
        for (let i = 0; i < size; i++) map.set(`k${i}`, i);
        const before = new Map(map);
        const got = drain(map, ops, per);
        expect(got.size).to.equal(before.size);
        for (const [k, v] of before) expect(got.get(k)).to.equal(v);
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps insertion order when nothing changes', () => {
    const map = new Map([['b', 1], ['a', 2], ['c', 3]]);
    const got = drain(map, [], 2);
    expect([...got.keys()]).to.deep.equal(['b', 'a', 'c']);
  });
});
