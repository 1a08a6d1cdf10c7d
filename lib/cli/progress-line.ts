import { type ProgressReporter, ProgressThrottle } from '../progress';

/**
 * A progress line on stderr for long CLI work: rewritten in place on a terminal, one line per
 * step in a log or a pipe (no carriage returns there). Nothing for work under a second.
 */
export function progressLine(label: string, total: number, unit = 'entries'): ProgressReporter {
  const tty = process.stderr.isTTY === true;
  let drawn = false;
  const throttle = new ProgressThrottle(total, (done, all) => {
    const pct = all === 0 ? 100 : Math.floor((100 * done) / all);
    const text = `${label}: ${pct}% (${done.toLocaleString('en-US')} of ${all.toLocaleString('en-US')} ${unit})`;
    if (tty) process.stderr.write(`\r${text}${done === all ? '\n' : ''}`);
    else process.stderr.write(`${text}\n`);
    drawn = done !== all;
  });
  return {
    update: (done) => throttle.update(done),
    finish: () => {
      throttle.finish();
      if (tty && drawn) process.stderr.write('\n');
    },
  };
}
