import { expect } from 'chai';
import fc from 'fast-check';
import { DEFAULT_TIME_CHECKS, EditWindow, type TimeCheck } from '../lib';

const S = 1000;
// A time on the bucket grid, far from zero, so bucket boundaries are where the tests say.
const T0 = 1_000_000 * S;

describe('EditWindow', () => {
  // CacheMan's build_fast_sync_cache: TimeCount(1, 2), TimeCount(5, 10), buckets of 1 s.
  const fast = () =>
    new EditWindow({ timeChecks: [{ seconds: 1, count: 2 }, { seconds: 5, count: 10 }], bucketSeconds: 1 });

  describe('defaults', () => {
    it("uses CacheMan's thresholds and 15-second buckets", () => {
      const w = new EditWindow();
      expect(w.timeChecks).to.deep.equal(DEFAULT_TIME_CHECKS);
      expect(w.bucketSeconds).to.equal(15);
      expect(w.bucketCount).to.equal(60);
    });
  });

  describe('band rule (CacheMan test_auto_sync_time_windows)', () => {
    it('saves after 2 edits within 1 s', () => {
      const w = fast();
      w.shift(T0);
      w.record(T0);
      expect(w.shouldSave(T0)).to.equal(false);
      w.record(T0);
      expect(w.shouldSave(T0)).to.equal(true);
    });

    it('does not save 1 + 1 edits split across bands', () => {
      const w = fast();
      w.shift(T0);
      w.record(T0);
      w.shift(T0 + 2 * S);
      w.record(T0 + 2 * S);
      expect(w.shouldSave(T0 + 2 * S)).to.equal(false);
    });

    it('saves 10 edits in the second band', () => {
      const w = fast();
      w.shift(T0);
      for (let i = 0; i < 10; i++) w.record(T0);
      // 10 edits 2 s ago: out of the 1-s band, all in the 1-5 s band.
      expect(w.shouldSave(T0 + 2 * S)).to.equal(true);
    });

    it('counts each band beyond the shorter one: 9 old + 1 new is not 10', () => {
      const w = fast();
      w.shift(T0);
      for (let i = 0; i < 9; i++) w.record(T0);
      w.shift(T0 + 2 * S);
      w.record(T0 + 2 * S);
      expect(w.shouldSave(T0 + 2 * S)).to.equal(false);
    });

    it("applies CacheMan's defaults: one edit saves once it is 300 s old", () => {
      const w = new EditWindow();
      w.shift(T0);
      w.record(T0);
      expect(w.shouldSave(T0 + 285 * S)).to.equal(false);
      expect(w.shouldSave(T0 + 300 * S)).to.equal(true);
      expect(w.shouldSave(T0 + 900 * S)).to.equal(false); // gone from the window
    });
  });

  describe('#record() (CacheMan test_out_of_window)', () => {
    it('ignores edits after the window end, far in the future, or before its start', () => {
      const w = fast();
      w.shift(T0);
      w.record(T0 + 1 * S);
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 0]);
      w.record(T0 + 5 * 86400 * S);
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 0]);
      w.record(T0);
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 1]);
      w.record(T0 - 86400 * S);
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 1]);
    });

    it('puts an edit into the bucket of its time', () => {
      const w = fast();
      w.shift(T0 + 4 * S);
      w.record(T0 + 2 * S, 3);
      expect(w.counts).to.deep.equal([0, 0, 3, 0, 0]);
    });

    it('ignores everything before the first shift', () => {
      const w = fast();
      w.record(T0);
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 0]);
    });
  });

  describe('#shift() (CacheMan test_window_cycling)', () => {
    it('moves buckets out as time passes', () => {
      const w = fast();
      w.shift(T0);
      w.record(T0);
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 1]);
      w.shift(T0 + 1 * S);
      w.record(T0 + 1 * S);
      expect(w.counts).to.deep.equal([0, 0, 0, 1, 1]);
      w.shift(T0 + 4 * S);
      expect(w.counts).to.deep.equal([1, 1, 0, 0, 0]);
      w.shift(T0 + 6 * S);
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 0]);
    });

    it('survives a jump far beyond the window', () => {
      const w = fast();
      w.shift(T0);
      w.record(T0, 4);
      w.shift(T0 + 10 * S);
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 0]);
      w.shift(T0 + 1e9 * S);
      w.record(T0 + 1e9 * S);
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 1]);
    });

    it('never moves back when the clock does', () => {
      const w = fast();
      w.shift(T0 + 3 * S);
      w.record(T0 + 3 * S);
      w.shift(T0);
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 1]);
    });
  });

  describe('#reset()', () => {
    it('zeroes every bucket', () => {
      const w = fast();
      w.shift(T0);
      w.record(T0, 5);
      w.reset();
      expect(w.counts).to.deep.equal([0, 0, 0, 0, 0]);
      expect(w.isEmpty).to.equal(true);
    });
  });

  describe('#overdue (edits a late check let skip the longest band)', () => {
    it('stays 0 when checked once a bucket: a lone edit reaches its band and is judged there', () => {
      const w = new EditWindow(); // 1 edit between 300 and 900 s ago
      w.shift(T0);
      w.record(T0);
      let calledAt = -1;
      for (let t = 15 * S; t <= 1000 * S; t += 15 * S) {
        if (calledAt < 0 && w.shouldSave(T0 + t)) calledAt = t;
        w.shift(T0 + t);
      }
      expect(calledAt).to.equal(300 * S);
      expect(w.isEmpty).to.equal(true); // aged out at 900 s, unsaved here: judged, so not overdue
      expect(w.overdue).to.equal(0);
    });

    it('counts edits one shift carries past the longest band, and only those', () => {
      const w = new EditWindow();
      w.shift(T0);
      w.record(T0, 2);
      w.shift(T0 + 400 * S); // into the 300-900 s band: judged there
      w.record(T0 + 400 * S, 3);
      w.shift(T0 + 1400 * S); // the 2 leave from that band; the 3 skip it from 0 s old
      expect(w.isEmpty).to.equal(true);
      expect(w.overdue).to.equal(3);
    });

    it('counts an edit recorded older than the window, not one recorded in the future', () => {
      const w = new EditWindow();
      w.shift(T0 + 2000 * S);
      w.record(T0, 4);
      w.record(T0 + 3000 * S, 5);
      expect(w.overdue).to.equal(4);
      expect(w.isEmpty).to.equal(true);
    });

    it('is never counted with a single band (every edit is judged by it from the start)', () => {
      const w = new EditWindow({ timeChecks: [{ seconds: 30, count: 5 }], bucketSeconds: 5 });
      w.shift(T0);
      w.record(T0);
      w.shift(T0 + 3600 * S);
      expect(w.overdue).to.equal(0);
    });

    it('is zeroed by reset()', () => {
      const w = new EditWindow();
      w.shift(T0);
      w.record(T0);
      w.shift(T0 + 3600 * S);
      expect(w.overdue).to.equal(1);
      w.reset();
      expect(w.overdue).to.equal(0);
    });
  });

  describe('#editsToTrigger()', () => {
    it('says how many more edits now reach the shortest band', () => {
      const w = new EditWindow({ timeChecks: [{ seconds: 60, count: 100 }] });
      w.shift(T0);
      expect(w.editsToTrigger()).to.equal(100);
      w.record(T0, 30);
      expect(w.editsToTrigger()).to.equal(70);
      w.record(T0, 200);
      expect(w.editsToTrigger()).to.equal(1);
    });
  });

  describe('options', () => {
    it('rejects bad timeChecks and bucketSeconds with a TypeError naming the option', () => {
      expect(() => new EditWindow({ bucketSeconds: 0 })).to.throw(TypeError, /bucketSeconds/);
      expect(() => new EditWindow({ bucketSeconds: Number.NaN })).to.throw(TypeError, /bucketSeconds/);
      expect(() => new EditWindow({ timeChecks: [] })).to.throw(TypeError, /timeChecks/);
      expect(() => new EditWindow({ timeChecks: [{ seconds: 10, count: 0 }] })).to.throw(TypeError, /timeChecks/);
      expect(() => new EditWindow({ timeChecks: [{ seconds: -1, count: 1 }] })).to.throw(TypeError, /timeChecks/);
    });

    it('sorts bands shortest first', () => {
      const w = new EditWindow({ timeChecks: [{ seconds: 30, count: 1 }, { seconds: 10, count: 5 }], bucketSeconds: 5 });
      expect(w.timeChecks.map((c) => c.seconds)).to.deep.equal([10, 30]);
      expect(w.bucketCount).to.equal(6);
    });
  });

  describe('property: matches a reference model of the band rule', () => {
    /** The rule, written plainly: every accepted edit kept with its bucket, nothing rotated. */
    class Model {
      edits: Array<{ cell: number; count: number }> = [];
      newest = Number.NEGATIVE_INFINITY;
      shiftedAt = Number.NEGATIVE_INFINITY;
      constructor(
        readonly checks: TimeCheck[],
        readonly bucketMs: number,
      ) {}
      get n(): number {
        return Math.ceil((this.checks[this.checks.length - 1] as TimeCheck).seconds / (this.bucketMs / 1000) - 1e-9);
      }
      shift(now: number) {
        this.newest = Math.max(this.newest, Math.floor(now / this.bucketMs));
        this.shiftedAt = Math.max(this.shiftedAt, now);
        this.edits = this.edits.filter((e) => this.newest - e.cell < this.n);
      }
      record(at: number, count: number) {
        if (!(at <= this.shiftedAt)) return;
        const cell = Math.floor(at / this.bucketMs);
        const age = this.newest - cell;
        if (age >= 0 && age < this.n) this.edits.push({ cell, count });
      }
      counts(): number[] {
        const out = new Array<number>(this.n).fill(0);
        for (const e of this.edits) {
          const i = this.n - 1 - (this.newest - e.cell);
          out[i] = (out[i] as number) + e.count;
        }
        return out;
      }
      shouldSave(now: number): boolean {
        this.shift(now);
        let from = 0;
        for (const c of this.checks) {
          const to = Math.ceil(c.seconds / (this.bucketMs / 1000) - 1e-9);
          const sum = this.edits
            .filter((e) => this.newest - e.cell >= from && this.newest - e.cell < to)
            .reduce((s, e) => s + e.count, 0);
          if (sum >= c.count) return true;
          from = to;
        }
        return false;
      }
    }

    it('agrees on counts and decisions for any sequence of shifts, edits and resets', () => {
      const checks = fc
        .uniqueArray(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 3 })
        .chain((secs) =>
          fc.tuple(...secs.sort((a, b) => a - b).map((seconds) => fc.integer({ min: 1, max: 6 }).map((count) => ({ seconds, count })))),
        );
      const op = fc.oneof(
        fc.record({ kind: fc.constant('shift' as const), dt: fc.integer({ min: -3000, max: 20000 }) }),
        fc.record({ kind: fc.constant('record' as const), dt: fc.integer({ min: -60000, max: 3000 }), count: fc.integer({ min: 1, max: 4 }) }),
        fc.record({ kind: fc.constant('check' as const), dt: fc.integer({ min: 0, max: 20000 }) }),
        fc.record({ kind: fc.constant('reset' as const) }),
      );
      fc.assert(
        fc.property(checks, fc.integer({ min: 1, max: 7 }), fc.array(op, { minLength: 10, maxLength: 80 }), (tc, bucketSeconds, ops) => {
          const w = new EditWindow({ timeChecks: tc, bucketSeconds });
          const m = new Model(tc, bucketSeconds * 1000);
          let now = T0;
          for (const o of ops) {
            if (o.kind === 'reset') {
              w.reset();
              m.edits = [];
            } else if (o.kind === 'shift') {
              now += o.dt;
              w.shift(now);
              m.shift(now);
            } else if (o.kind === 'record') {
              w.record(now + o.dt, o.count);
              m.record(now + o.dt, o.count);
            } else {
              now += o.dt;
              expect(w.shouldSave(now)).to.equal(m.shouldSave(now));
            }
            expect(w.counts).to.deep.equal(m.counts());
          }
        }),
        { numRuns: 500 },
      );
    });
  });
});
