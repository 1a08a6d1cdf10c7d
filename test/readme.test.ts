import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTempDir, removeDir } from './helpers';

const root = path.join(__dirname, '..');

/** The first ```ts block after `heading` in README.md. */
function readmeBlock(heading: string): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(heading);
  const match = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  if (at < 0 || !match) throw new Error(`no ts block after ${heading}`);
  return match[1] as string;
}

describe('README', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = makeTempDir();
  });
  afterEach(() => removeDir(tmp));

  it('quick start compiles (type-checked) and runs as written in a CommonJS project', async function () {
    this.timeout(60000);
    const file = path.join(tmp, 'quick-start.ts');
    fs.writeFileSync(file, readmeBlock('## Quick start').replace(/from 'depcache'/g, `from ${JSON.stringify(path.join(root, 'lib'))}`));
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      // Not transpile-only: ts-node type-checks the block against the repository's tsconfig.
      const child = spawn(process.execPath, ['-r', 'ts-node/register', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TMPDIR: tmp, TS_NODE_PROJECT: path.join(root, 'tsconfig.json'), TS_NODE_FILES: 'false' },
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', (c) => resolve({ code: c, output: out }));
    });
    expect(code, output).to.equal(0);
    expect(output.trim()).to.equal('3');
  });
});
