// Bench workers run in fresh processes (so subjects never share a heap or JIT feedback). Through
// ts-node each process spent ~1.8 s loading TypeScript and transpiling lib/ before measuring
// anything, most of a quick run. So the sources are transpiled once per bench run, into a
// temp directory, and workers run that JavaScript with plain node.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
// What workers import: the library, the bench, and the test helper that starts redis-server.
const SOURCES = ['lib', 'bench', path.join('test', 'redis-server.ts')];

let built: string | undefined;

/** Runs `bench/<script>.ts` (as transpiled JavaScript) with `args`; returns its stdout. */
export function runWorker(script: string, args: readonly string[], nodeFlags: readonly string[] = ['--expose-gc']): string {
  const file = path.join(buildOnce(), 'bench', `${script}.js`);
  return execFileSync(process.execPath, [...nodeFlags, file, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** The transpiled sources (lib/ and bench/ as JavaScript, beside a node_modules link), built once per run. */
export function builtLibrary(): string {
  return buildOnce();
}

function buildOnce(): string {
  if (built !== undefined) return built;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'depcache-bench-js-'));
  process.on('exit', () => fs.rmSync(out, { recursive: true, force: true }));
  // Packages resolve from the transpiled files as they do from the sources.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(out, 'node_modules'), 'dir');
  const config = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  for (const source of SOURCES.flatMap((s) => tsFiles(path.join(ROOT, s)))) {
    const rel = path.relative(ROOT, source);
    const { outputText } = ts.transpileModule(fs.readFileSync(source, 'utf8'), {
      compilerOptions: { ...options, sourceMap: false, declaration: false },
      fileName: source,
    });
    const target = path.join(out, rel.replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, outputText);
  }
  built = out;
  return out;
}

function tsFiles(p: string): string[] {
  if (!fs.statSync(p).isDirectory()) return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  return fs.readdirSync(p).flatMap((name) => tsFiles(path.join(p, name)));
}
