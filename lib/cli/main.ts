#!/usr/bin/env node
// The depcache CLI: looks into a manager's cache directory without loading user code.
import { Command, CommanderError } from 'commander';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { inspect } from 'node:util';
import { CacheIOError, CorruptCacheFileError, DepcacheError } from '../errors';
import { FileStore } from '../store/file-store';
import { fromJsonSafe, toJsonSafe } from '../store/json-safe';
import { defaultBaseDirectory, SafeDirectory } from '../store/safe-directory';
import { JOURNAL_SUFFIX } from '../store/journal';
import { LiveSnapshot } from '../store/snapshot';
import { CacheDirectory, type CacheFileInfo, CliError, EXIT, type Leftover, UsageError } from './directory';
import { GRAPH_FORMATS, type GraphFormat, renderGraph } from '../graph-render';
import { callText, isMemoizeCache, memoizedCall } from './memoize-view';
import { progressLine } from './progress-line';

interface GlobalOptions {
  dir?: string;
  manager: string;
}

function directoryOf(program: Command): string {
  const { dir, manager } = program.opts<GlobalOptions>();
  return resolve(dir ?? join(defaultBaseDirectory(), manager));
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function show(value: unknown): string {
  return inspect(value, { depth: 4, breakLength: Number.POSITIVE_INFINITY, maxArrayLength: 20, maxStringLength: 200 });
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

function isFlatObject(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === 'object' &&
    v !== null &&
    Object.getPrototypeOf(v) === Object.prototype &&
    Object.values(v).every((x) => x === null || ['string', 'number', 'boolean'].includes(typeof x))
  );
}

function csvCell(v: unknown): string {
  // A NUL (or another control character but tab and line breaks) in a CSV cell breaks the
  // tools CSV is for (spreadsheets, shell pipes): such a string goes as a JSON cell, escaped.
  if (typeof v === 'string') return /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(toJsonSafe(v));
}

/**
 * CSV of entries: one row a call for memoize's cache (function, arguments, result, last used);
 * one column per field when every value is a flat object; else key,value.
 */
function toCsv(entries: Array<[unknown, unknown]>, onRow: () => void = () => undefined): string {
  if (isMemoizeCache(entries)) {
    const rows = entries.map(([k, v]) => {
      onRow();
      const call = memoizedCall(k, v) as NonNullable<ReturnType<typeof memoizedCall>>;
      return [call.fn, call.args, csvCell(call.result), new Date(call.lastUsed).toISOString()];
    });
    return stringify([['function', 'arguments', 'result', 'last used'], ...rows]);
  }
  if (entries.length > 0 && entries.every(([, v]) => isFlatObject(v))) {
    const fields = [...new Set(entries.flatMap(([, v]) => Object.keys(v as object)))];
    const rows = entries.map(([k, v]) => (onRow(), [csvCell(k), ...fields.map((f) => csvCell((v as Record<string, unknown>)[f]))]));
    return stringify([['key', ...fields], ...rows]);
  }
  return stringify([['key', 'value'], ...entries.map(([k, v]) => (onRow(), [csvCell(k), csvCell(v)]))]);
}

function fromCsv(text: string): Array<[unknown, unknown]> {
  const rows = parse(text) as string[][];
  const [head, ...body] = rows;
  if (!head || head.length < 2) throw new CliError('a CSV import needs a header row: key,value or key,<fields...>', EXIT.usage);
  if (head.length === 2 && head[1] === 'value') return body.map((r) => [r[0], r[1]]);
  return body.map((r) => [r[0], Object.fromEntries(head.slice(1).map((f, i) => [f, r[i + 1]]))]);
}

function fromJson(text: string): Array<[unknown, unknown]> {
  const body = JSON.parse(text) as unknown;
  const pairs = Array.isArray(body) ? body : (body as { entries?: unknown }).entries;
  if (!Array.isArray(pairs) || !pairs.every((p) => Array.isArray(p) && p.length === 2)) {
    throw new CliError('a JSON import needs [[key, value], ...] (or {"entries": [...]})', EXIT.usage);
  }
  return (pairs as Array<[unknown, unknown]>).map(([k, v]) => [fromJsonSafe(k), fromJsonSafe(v)]);
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new CliError('refusing to remove without --yes (no terminal to ask)', EXIT.usage);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** The OK column of `list`: verified, and what the journal holds. */
function okText(c: CacheFileInfo): string {
  const notes: string[] = [];
  if (c.journalRecords > 0) notes.push(`${c.journalRecords} journal record(s)`);
  if (c.journalTorn) notes.push('last journal record torn by a crash: dropped on load');
  if (c.expired > 0) notes.push(`${c.expired} expired: dropped on load`);
  return notes.length === 0 ? 'yes' : `yes (${notes.join('; ')})`;
}

/** What `list` says of a leftover, and what removes it. */
const LEFTOVER_TEXT: Record<Leftover['kind'], string> = {
  temp: "a temp file: a save in progress, or left by a crash ('depcache clean' removes it once its process is gone)",
  journal: "a journal without its cache file ('depcache clean' removes it)",
  quarantined: "a damaged file moved aside ('depcache clean --corrupt' removes it)",
};

/** The exit codes, as `--help` ends with them (docs/cli.md has the same table). */
const EXIT_CODES_HELP = [
  'Exit codes:',
  '  0  ok (also when the reader of stdout went away, as with | head)',
  '  1  verify found a corrupt or unreadable file, or an unexpected failure',
  '  2  usage error, or no cache directory',
  '  3  unknown cache',
  '  4  corrupt cache file or manifest',
  '  5  a file that cannot be read (not a regular file: a FIFO, a link, a directory)',
  '  6  invalidate cannot know the dependents',
  '  7  a file that cannot be written or removed (a full disk, a read-only file system, no permission)',
].join('\n');

/** The version in our package.json (two levels up from both lib/cli and dist/cli). */
function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('depcache')
    .description("Inspect and manage a depcache manager's cache directory (no user code is loaded).")
    .version(packageVersion(), '-V, --version', 'the version of depcache')
    .option('--dir <dir>', 'the cache directory')
    .option('--manager <name>', "a manager name: its directory under the per-user temp directory (<tmpdir>/depcache-<uid>)", 'general_cacher')
    .exitOverride()
    .addHelpText('after', `\n${EXIT_CODES_HELP}`);

  program
    .command('list')
    .description('every cache: real name, entries, bytes, last save, and whether it verifies')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const dir = new CacheDirectory(directoryOf(program));
      const caches = dir.list();
      if (opts.json) return out(JSON.stringify(caches, null, 1));
      if (caches.length === 0) return out(`no caches in ${dir.path}`);
      out(
        table([
          ['NAME', 'ENTRIES', 'BYTES', 'SAVED', 'FORMAT', 'OK'],
          ...caches.map((c) => [c.name, String(c.entries ?? '?'), String(c.bytes), c.savedAt ?? '', c.format, c.verifies ? okText(c) : `NO: ${c.problem}`]),
        ]),
      );
      const leftovers = dir.leftovers();
      if (leftovers.length > 0) out(['leftovers (not caches):', ...table(leftovers.map((l) => [l.file, LEFTOVER_TEXT[l.kind]])).split('\n').map((l) => `  ${l}`)].join('\n'));
    });

  program
    .command('show <name>')
    .description('the first entries of a cache, readable')
    .option('--limit <n>', 'how many entries', '20')
    .option('--json', 'machine-readable output')
    .action((name: string, opts: { limit: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 0) throw new UsageError(`--limit: expected a whole number, got ${opts.limit}`);
      const { info, entries, expiresAt } = new CacheDirectory(directoryOf(program)).read(name);
      const shown = entries.slice(0, limit);
      const now = Date.now();
      const expiry = (i: number) => {
        const at = expiresAt[i];
        return at === undefined ? undefined : { at: new Date(at).toISOString(), expired: at <= now };
      };
      if (opts.json) {
        const rows = shown.map(([k, v], i) => {
          const e = expiry(i);
          return e === undefined ? [toJsonSafe(k), toJsonSafe(v)] : [toJsonSafe(k), toJsonSafe(v), { expiresAt: e.at, expired: e.expired }];
        });
        return out(JSON.stringify({ name: info.name, entries: entries.length, expired: info.expired, shown: rows, more: entries.length - shown.length }, null, 1));
      }
      const expiredNote = info.expired > 0 ? `, ${info.expired} expired` : '';
      out(`${info.name}: ${entries.length} entries${expiredNote} (${info.file}, ${info.bytes} bytes${info.savedAt ? `, saved ${info.savedAt}` : ''})`);
      const calls = isMemoizeCache(entries); // memoize's keys are encoded calls: show them as calls
      shown.forEach(([k, v], i) => {
        const e = expiry(i);
        const call = calls ? memoizedCall(k, v) : undefined;
        const entry = call ? `${callText(call)} => ${show(call.result)}  (last used ${new Date(call.lastUsed).toISOString()})` : `${show(k)} => ${show(v)}`;
        out(`  ${entry}${e === undefined ? '' : e.expired ? `  (expired ${e.at})` : `  (expires ${e.at})`}`);
      });
      if (entries.length > shown.length) out(`  … and ${entries.length - shown.length} more`);
    });

  program
    .command('export <name>')
    .description('a cache as JSON (types kept) or CSV')
    .requiredOption('--format <format>', 'json or csv')
    .option('--out <file>', 'write to a file instead of stdout')
    .action((name: string, opts: { format: string; out?: string }) => {
      if (opts.format !== 'json' && opts.format !== 'csv') throw new UsageError(`--format: expected json or csv, got ${opts.format}`);
      const saved = new CacheDirectory(directoryOf(program)).read(name);
      // What a load would give: the values, without the entries that expired.
      const now = Date.now();
      const entries = saved.entries.filter((_, i) => !((saved.expiresAt[i] ?? Number.POSITIVE_INFINITY) <= now));
      const progress = progressLine(`export ${name}`, entries.length);
      let done = 0;
      const text =
        opts.format === 'json'
          ? `${JSON.stringify(entries.map(([k, v]) => (progress.update(++done), [toJsonSafe(k), toJsonSafe(v)])), null, 1)}\n`
          : toCsv(entries, () => progress.update(++done));
      progress.finish();
      if (opts.out) fs.writeFileSync(opts.out, text);
      else process.stdout.write(text);
    });

  program
    .command('import <name> <file>')
    .description('write a cache from JSON ([[key, value], ...]) or CSV (header key,value or key,<fields>)')
    .option('--format <format>', 'json or csv (default: from the file extension)')
    .action(async (name: string, file: string, opts: { format?: string }) => {
      const format = opts.format ?? (file.endsWith('.csv') ? 'csv' : 'json');
      if (!fs.existsSync(file)) throw new CliError(`no file at ${file}`, EXIT.usage);
      const text = fs.readFileSync(file, 'utf8');
      const entries = format === 'csv' ? fromCsv(text) : fromJson(text);
      const dir = directoryOf(program);
      const store = new FileStore(new SafeDirectory(dir));
      store.progress = (cache, _op, total) => progressLine(`import ${cache}`, total);
      await store.write(name, new LiveSnapshot(new Map(entries)));
      out(`imported ${entries.length} entries into ${name} (${store.pathFor(name)})`);
    });

  program
    .command('rm <name>')
    .description('remove a cache file and its journal (asks unless --yes)')
    .option('--yes', 'do not ask')
    .action(async (name: string, opts: { yes?: boolean }) => {
      const dir = new CacheDirectory(directoryOf(program));
      const info = dir.locate(name);
      const path = join(dir.path, info.file);
      if (!opts.yes && !(await confirm(`remove ${info.name} (${path})?`))) return out('kept');
      out(dir.remove(info).map((p) => `removed ${p}`).join('\n'));
    });

  program
    .command('compact <name>')
    .description("fold a cache's journal into a new file now (saves do this by themselves past a share of the file)")
    .action(async (name: string) => {
      const dir = new CacheDirectory(directoryOf(program));
      const info = dir.locate(name);
      if (info.format !== 'v8') throw new CliError(`${name}: ${info.format} caches have no journal: they are written whole`, EXIT.usage);
      if (!info.verifies) throw new CliError(`${name}: the file is corrupt (${info.problem}): ${join(dir.path, info.file)}`, EXIT.corrupt);
      const store = new FileStore(new SafeDirectory(dir.path));
      store.progress = (cache, _op, total) => progressLine(`compact ${cache}`, total);
      await store.compact(info.name);
      out(info.journalRecords === 0 ? `${info.name}: no journal to compact` : `${info.name}: ${info.journalRecords} journal record(s) folded into ${info.file}`);
    });

  program
    .command('verify')
    .description('check the CRC of every frame and journal record of every file; exit 1 if any is corrupt')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const dir = new CacheDirectory(directoryOf(program));
      const progress = progressLine('verify', dir.fileCount(), 'files');
      let done = 0;
      const caches = dir.list(() => progress.update(++done));
      progress.finish();
      const bad = caches.filter((c) => !c.verifies);
      // A torn last record is no corruption (a load drops it, as documented), but it is a save
      // that a crash lost: worth a line, not a failure.
      const torn = caches.filter((c) => c.journalTorn).map((c) => ({ file: c.file + JOURNAL_SUFFIX, name: c.name }));
      if (opts.json) {
        out(JSON.stringify({ checked: caches.length, corrupt: bad.map((c) => ({ file: c.file, name: c.name, problem: c.problem })), torn }, null, 1));
      } else {
        for (const t of torn) out(`WARNING ${t.file} (${t.name}): its last record was cut short by a crash: a load drops it, the next save cuts it off`);
        if (bad.length === 0) out(`all ${caches.length} cache file(s) verify`);
        else for (const c of bad) out(`CORRUPT ${c.file} (${c.name}): ${c.problem}`);
      }
      if (bad.length > 0) process.exitCode = EXIT.verifyFailed;
    });

  program
    .command('clean')
    .description('remove leftovers: temp files of dead processes and journals without their file (and quarantined files with --corrupt)')
    .option('--corrupt', 'also remove quarantined <file>.corrupt-<timestamp> files')
    .action(async (opts: { corrupt?: boolean }) => {
      const removed = await new CacheDirectory(directoryOf(program)).clean(opts.corrupt === true);
      out(removed.length === 0 ? 'nothing to clean' : removed.map((p) => `removed ${p}`).join('\n'));
    });

  program
    .command('graph')
    .description('the dependency graph, from the manager manifest and the cache files')
    .option('--format <format>', `text (a tree), json, dot (Graphviz) or mermaid`, 'text')
    .option('--json', 'the same as --format json')
    .action((opts: { json?: boolean; format: string }) => {
      const format = opts.json ? 'json' : opts.format;
      if (!(GRAPH_FORMATS as readonly string[]).includes(format)) {
        throw new UsageError(`--format: expected one of ${GRAPH_FORMATS.join(', ')}, got ${format}`);
      }
      const dir = new CacheDirectory(directoryOf(program));
      const manifest = dir.manifest;
      if (!manifest) throw new CliError(`no manifest in ${dir.path}: no manager has registered a persistent cache there`, EXIT.usage);
      const files = new Map(dir.list().map((info) => [info.name, info]));
      const nodes = Object.entries(manifest.caches).map(([name, { kind }]) => {
        const info = files.get(name);
        return {
          name,
          kind,
          entries: info?.entries,
          savedAt: info?.savedAt,
          corrupt: info === undefined ? undefined : !info.verifies,
          inputs: manifest.inputs?.[name],
        };
      });
      out(renderGraph({ manager: manifest.manager, nodes, dependents: manifest.dependents }, format as GraphFormat));
    });

  program
    .command('invalidate <name>')
    .description('delete the saved content of a cache and, cascading, of its dependents (refuses when the manifest cannot tell them)')
    .option('--only', 'delete this cache alone, knowingly leaving its dependents')
    .option('--json', 'machine-readable output')
    .action((name: string, opts: { json?: boolean; only?: boolean }) => {
      const result = new CacheDirectory(directoryOf(program)).invalidate(name, opts.only === true);
      if (opts.json) return out(JSON.stringify(result, null, 1));
      for (const r of result) out(r.file ? `deleted ${r.cache} (${r.file})` : `${r.cache}: nothing saved`);
    });

  for (const command of [program, ...program.commands]) {
    command.configureOutput({ outputError: (text, write) => write(`${usageLine(text, command)}\n`) });
  }
  return program;
}

/** The help command for a command: `depcache --help` or `depcache show --help`. */
function helpHint(command: Command): string {
  return command.parent ? `depcache ${command.name()} --help` : 'depcache --help';
}

/**
 * A usage error as one line with a pointer to the help: the whole help text after an error
 * buried the error itself (issue 34). Commander's own text starts with "error: " and may add a
 * second line ("(Did you mean list?)"), folded in here.
 */
function usageLine(text: string, command: Command): string {
  const message = text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
  return `depcache: ${message} (run '${helpHint(command)}')`;
}

export async function main(argv: string[]): Promise<number> {
  // Commands set process.exitCode (verify); a run starts from none and leaves the caller's as it was.
  const callers = process.exitCode;
  process.exitCode = undefined;
  const program = buildProgram();
  let running: Command = program; // the command whose action runs, for the hint of a UsageError
  program.hook('preAction', (_program, action) => {
    running = action;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof UsageError) {
      process.stderr.write(`${usageLine(err.message, running)}\n`);
      return err.exitCode;
    }
    if (err instanceof CliError) {
      process.stderr.write(`depcache: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof DepcacheError || isSystemError(err)) {
      process.stderr.write(`depcache: ${(err as Error).message}\n`);
      return exitCodeOf(err as Error);
    }
    process.stderr.write(`depcache: ${(err as Error)?.stack ?? String(err)}\n`);
    return EXIT.verifyFailed;
  } finally {
    process.exitCode = callers;
  }
}

/** An error of the operating system (ENOSPC, EACCES, ...), from the CLI's own fs calls. */
function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

/** 4 corrupt; 5 a file that cannot be read; 7 any other I/O failure (a write, a removal, a compaction). */
function exitCodeOf(err: Error): number {
  if (err instanceof CorruptCacheFileError) return EXIT.corrupt;
  if (err instanceof CacheIOError) return err.message.startsWith(`${err.cacheName}: read failed`) ? EXIT.io : EXIT.writeFailed;
  if (isSystemError(err)) return err.syscall === 'read' ? EXIT.io : EXIT.writeFailed;
  return EXIT.io;
}

/**
 * Stdout's reader went away (`depcache show raw | head -1`): what was wanted was read, so end
 * now, quietly and with success, as `head` users expect; the rest of the output has nowhere to
 * go. Without this, Node reports the EPIPE as an uncaught error with its stack.
 */
function endQuietlyOnClosedStdout(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  throw err;
}

if (require.main === module) {
  process.stdout.on('error', endQuietlyOnClosedStdout);
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
