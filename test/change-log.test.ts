import { expect } from 'chai';
import { ChangeLog } from '../lib/change-log';

describe('ChangeLog', () => {
  it('stays off until tracked: a save taking it leaves nothing for the hot path to push onto', () => {
    const log = new ChangeLog<string>();
    const taken = log.take(0);
    expect(taken.all).to.equal(true);
    expect(log.keys).to.equal(null);
    log.restore(taken);
    expect(log.keys).to.equal(null);
  });

  it('gives back what a failed save took, with what changed meanwhile', () => {
    const log = new ChangeLog<string>();
    log.track(false);
    log.take(0);
    log.keys?.push('a');
    const taken = log.take(1);
    log.keys?.push('b');
    log.restore(taken);
    expect(log.keys).to.deep.equal(['a', 'b']);
    expect(log.hasUnsaved).to.equal(true);
  });
});
