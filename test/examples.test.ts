import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

// Every example must run and exit 0, so none of them can go stale.
describe('examples', () => {
  const dir = path.join(__dirname, '..', 'examples');
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).sort()) {
    it(`${file} runs and exits 0`, async function () {
      this.timeout(60000);
      const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(dir, file)], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        child.on('error', reject);
        child.on('close', (c) => resolve({ code: c, output }));
      });
      expect(code, output).to.equal(0);
    });
  }
});
