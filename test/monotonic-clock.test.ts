import FakeTimers from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { monotonicNow, steadyClock } from '../lib/monotonic-clock';

describe('monotonic clock', () => {
  it('monotonicNow reads performance.now at each call, so a faked one is followed', () => {
    const clock = FakeTimers.install({ now: 1_700_000_000_000, toFake: ['Date', 'performance'] });
    try {
      const start = monotonicNow();
      clock.setSystemTime(Date.now() - 86_400_000); // the wall clock steps back a day
      expect(monotonicNow()).to.equal(start);
      clock.tick(1500);
      expect(monotonicNow()).to.equal(start + 1500);
    } finally {
      clock.uninstall();
    }
  });

  it('steadyClock absorbs a step back and follows the differences after it', () => {
    const readings = [100, 40, 50, 50, 1050];
    const steady = steadyClock(() => readings.shift() as number);
    expect([steady(), steady(), steady(), steady(), steady()]).to.deep.equal([100, 100, 110, 110, 1110]);
  });

  it('steadyClock passes a forward step through (it cannot be told from time passing)', () => {
    const readings = [0, 10, 10 + 365 * 86_400_000];
    const steady = steadyClock(() => readings.shift() as number);
    expect([steady(), steady(), steady()]).to.deep.equal([0, 10, 10 + 365 * 86_400_000]);
  });
});
