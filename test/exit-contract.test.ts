import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { FIXTURES, makeTempDir, removeDir } from './helpers';

// The exit contract, for every store a cache can save through: an edit made and not saved is
// saved however the script ends (by itself, process.exit(), an uncaught exception, an unhandled
// rejection, SIGTERM), or stderr names the cache that lost it and the exit status says failure.
// Never silence.

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(dir: string, kind: string, mode: string): Promise<Ended> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(FIXTURES, 'exit-store.ts'), dir, kind, mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (mode === 'sigterm' && stdout.includes('ready')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90000); // a hang is the failure this catches: killed, and seen as such
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The status a script would have had without depcache: what each way of ending gives. */
const NATURAL_END: Record<string, { code: number | null; signal: NodeJS.Signals | null }> = {
  natural: { code: 0, signal: null },
  exit0: { code: 0, signal: null },
  throw: { code: 1, signal: null },
  reject: { code: 1, signal: null },
  sigterm: { code: null, signal: 'SIGTERM' },
};

// Stores that can write synchronously: saved on every path.
const SYNC_STORES = ['v8', 'json', 'csv', 'sync-saver', 'store'];
// Async custom savers: saved when the loop empties or on a signal (there is time to await them);
// on process.exit() and a crash nothing async can run: said on stderr, failure status.
const ASYNC_STORES = ['async-saver', 'promise-saver', 'store-without-sync'];

describe('exit contract (every store, every way a script ends)', function () {
  this.timeout(240000);
  for (const kind of [...SYNC_STORES, ...ASYNC_STORES]) {
    describe(kind, () => {
      let dir: string;
      const ended: Record<string, Ended> = {};
      let found: Record<string, unknown> = {};
      // Each way of ending edits a cache of its own, in processes run side by side; one rerun reads them all.
      before(async () => {
        dir = makeTempDir();
        await Promise.all(Object.keys(NATURAL_END).map(async (mode) => (ended[mode] = await run(dir, kind, mode))));
        const read = await run(dir, kind, 'read');
        expect(read.code, read.stderr).to.equal(0);
        found = JSON.parse(read.stdout) as Record<string, unknown>;
      });
      after(() => removeDir(dir));

      for (const mode of Object.keys(NATURAL_END)) {
        const saves = SYNC_STORES.includes(kind) || mode === 'natural' || mode === 'sigterm';
        if (saves) {
          it(`saves an unsaved edit on ${mode}, with the exit status unchanged`, () => {
            const e = ended[mode] as Ended;
            expect({ code: e.code, signal: e.signal }, e.stderr).to.deep.equal(NATURAL_END[mode]);
            expect(e.stderr).to.not.match(/depcache:/);
            expect(found[mode]).to.equal(mode);
          });
        } else {
          // Nothing async can run once process.exit() or a crash ends the process.
          it(`on ${mode}, names the cache whose edit is lost on stderr and fails the exit status`, () => {
            const e = ended[mode] as Ended;
            expect(e.stderr).to.match(new RegExp(`depcache: unsaved edits lost at exit: c-${mode}: .*not saved`));
            expect(e.code).to.equal(1);
            // What was saved before (the build at open) is never damaged by a save that could not run.
            expect(found[mode]).to.equal(null);
          });
        }
      }
    });
  }
});
