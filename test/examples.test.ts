import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTempDir, removeDir, runCliHere } from './helpers';

const dir = path.join(__dirname, '..', 'examples');

/** Runs an example in a child process whose temp directory is `tmp` (so its caches land there). */
function run(file: string, tmp: string, args: string[] = []): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(dir, file), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TMPDIR: tmp, ETL_BASE_DIR: undefined },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

// What the second run of an example must say: each one shows that its data outlived the first.
const SECOND_RUN: Record<string, RegExp> = {
  'simple.ts': /found 1 earlier run/,
  'memoize.ts': /from an earlier run: no computation/,
  'expiry.ts': /USD: 3\.3\d* \(from an earlier run, until/,
  'etl.ts': /raw: reused, saved by an earlier run\ncleaned: reused, saved by an earlier run\nreport: reused/,
};

// Every example must run twice and exit 0 both times, so none of them can go stale.
describe('examples', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = makeTempDir();
  });
  afterEach(() => removeDir(tmp));

  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).sort()) {
    it(`${file} runs twice and exits 0${SECOND_RUN[file] ? ', reusing what the first run saved' : ''}`, async function () {
      this.timeout(60000);
      const first = await run(file, tmp);
      expect(first.code, first.output).to.equal(0);
      const second = await run(file, tmp);
      expect(second.code, second.output).to.equal(0);
      const expected = SECOND_RUN[file];
      if (expected) expect(second.output).to.match(expected);
      expect(first.output + second.output, 'carriage returns in a pipe').not.to.contain('\r');
    });
  }

  it('etl.ts --refresh rebuilds the dependent steps in order, and the CLI commands it prints work', async function () {
    this.timeout(60000);
    const first = await run('etl.ts', tmp, ['--refresh']);
    expect(first.code, first.output).to.equal(0);
    expect(first.output).to.contain('rebuilt after new raw data: raw → cleaned → report');
    const commands = [...first.output.matchAll(/npm run cli -- --manager etl (.+?)\s+#/g)].map((m) => (m[1] as string).split(' '));
    expect(commands.map((c) => c[0])).to.deep.equal(['graph', 'show', 'invalidate']);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp; // the CLI finds --manager etl where the example put it
    try {
      for (const args of commands) expect(await runCliHere(['--manager', 'etl', ...args]).then((r) => r.code), args.join(' ')).to.equal(0);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    const after = await run('etl.ts', tmp);
    expect(after.output).to.match(/raw: built/); // the CLI's invalidate made it rebuild
  });
});
