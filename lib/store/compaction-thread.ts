import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type CompactionJob, type CompactionOutcome, compactFiles } from './compaction';
import type { ProgressReporter } from '../progress';

/**
 * Bases at least this large are compacted from their files on a worker thread. Decoding and
 * re-encoding a base makes garbage at a rate whose scavenges paused the event loop 10-30 ms
 * each at 1M entries, however finely the work was sliced; a thread has its own heap. Smaller
 * bases are compacted in place, where a thread's start would cost more than the whole job.
 */
export const COMPACT_IN_THREAD_MIN_BYTES = 8 * 1024 * 1024;

/** What the compaction thread tells the cache's thread. @internal */
export type CompactionMessage =
  | { readonly kind: 'ready' }
  | { readonly kind: 'total'; readonly total: number }
  | { readonly kind: 'done'; readonly done: number }
  | { readonly kind: 'finish' }
  | { readonly kind: 'outcome'; readonly outcome: CompactionOutcome }
  | {
      readonly kind: 'failed';
      readonly error: { name?: string; message?: string; code?: string; errno?: number; syscall?: string; path?: string };
    };

/**
 * compactFiles, on a worker thread when the base is at least `COMPACT_IN_THREAD_MIN_BYTES` or
 * when `thread` (started ahead, see {@link CompactionThread}) is given; the thread is stopped
 * once the job is over. The caller's lock covers the thread's writes: it is held until the
 * returned promise settles, and a thread cannot outlive its process. @internal
 */
export async function compactFilesOffThread(
  job: CompactionJob,
  baseBytes: number,
  progressFor: (total: number) => ProgressReporter | undefined,
  thread?: CompactionRunner,
): Promise<CompactionOutcome> {
  if (thread === undefined && baseBytes < COMPACT_IN_THREAD_MIN_BYTES) return compactFiles(job, progressFor);
  const running = thread ?? new CompactionThread();
  try {
    return await running.run(job, progressFor);
  } finally {
    running.stop();
  }
}

/** A compaction's thread, started ahead (see {@link CompactionThread}). @internal */
export interface CompactionRunner {
  /** Resolves once the job can be handed over; rejects when the thread ended first. */
  readonly ready: Promise<void>;
  /** Runs the job (once); resolves with its outcome. */
  run(job: CompactionJob, progressFor: (total: number) => ProgressReporter | undefined): Promise<CompactionOutcome>;
  /** Ends the thread (once; later calls do nothing). */
  stop(): void;
}

/**
 * A compaction thread, started before its job is known. Booting a thread costs tens of ms of
 * CPU (hundreds from source, through ts-node); a caller that starts it before taking the cache's
 * lock keeps that boot out of the lock, so a save never waits for it, and at the lowest
 * priority from the start the boot gives way to the saves that run meanwhile. @internal
 */
export class CompactionThread implements CompactionRunner {
  readonly ready: Promise<void>;
  readonly #worker: Worker;
  #job: ((message: CompactionMessage) => void) | undefined;
  #ended: ((err: Error) => void) | undefined;
  #stopped = false;

  constructor() {
    const before = threadIds();
    this.#worker = startWorker();
    lowerNewThreads(before);
    this.ready = new Promise<void>((resolve, reject) => {
      this.#worker.on('message', (message: CompactionMessage) => {
        if (message.kind === 'ready') resolve();
        else this.#job?.(message);
      });
      const end = (err: Error) => {
        reject(err);
        this.#ended?.(err);
      };
      this.#worker.on('error', end);
      this.#worker.on('exit', (code) => end(new Error(`the compaction thread stopped (exit code ${code}) before it finished`)));
    });
    this.ready.catch(() => undefined); // a thread stopped before anyone awaited it is no failure
  }

  run(job: CompactionJob, progressFor: (total: number) => ProgressReporter | undefined): Promise<CompactionOutcome> {
    return new Promise((resolve, reject) => {
      let progress: ProgressReporter | undefined;
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        fn();
        this.stop();
      };
      this.#ended = (err) => settle(() => reject(err));
      this.#job = (message) => {
        switch (message.kind) {
          case 'total':
            progress = progressFor(message.total);
            break;
          case 'done':
            progress?.update(message.done);
            break;
          case 'finish':
            progress?.finish();
            break;
          case 'outcome':
            settle(() => resolve(message.outcome));
            break;
          case 'failed':
            settle(() => reject(Object.assign(new Error(message.error.message ?? 'compaction failed'), message.error)));
            break;
        }
      };
      if (this.#stopped) return settle(() => reject(new Error('the compaction thread was stopped before its job')));
      // The thread has nobody to yield to: it works through in one go.
      this.#worker.postMessage({ ...job, sliceMs: Number.POSITIVE_INFINITY });
    });
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    void this.#worker.terminate();
  }
}

// Background work: on Linux a thread has a priority of its own (by its tid, from /proc), and at
// the lowest one the thread gives way to the cache's thread whenever both want a core. The
// starter lowers it as soon as the thread exists: booted at the default priority, the thread
// took a core from the save running meanwhile (a 10-edit save took 8-17 ms instead of 1.7 ms on
// 2 cores, its fs calls queued behind the boot). The thread sets it again first thing, in case
// the starter could not tell which thread was new. Elsewhere it runs at the default priority.
const LOWEST = 19;
const LOWEST_PRIORITY = `try { require('node:os').setPriority(Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()), ${LOWEST}); } catch {}`;

/** The ids of this process's threads (Linux), or undefined where they cannot be listed. */
function threadIds(): Set<string> | undefined {
  try {
    return new Set(readdirSync('/proc/self/task'));
  } catch {
    return undefined;
  }
}

/** Lowers the priority of the threads started since `before` was listed: the new worker's. */
function lowerNewThreads(before: Set<string> | undefined): void {
  if (before === undefined) return;
  for (const tid of threadIds() ?? []) {
    if (before.has(tid)) continue;
    try {
      setPriority(Number(tid), LOWEST);
    } catch {
      // gone already, or not ours to change: the thread lowers itself
    }
  }
}

function startWorker(): Worker {
  const extension = extname(__filename);
  const entry = join(__dirname, `compaction-worker${extension}`);
  // None of the parent's flags or preloads; running from source (tests, bench), ts-node.
  const typescript = extension === '.ts' ? `require('ts-node/register/transpile-only');\n` : '';
  return new Worker(`${LOWEST_PRIORITY}\n${typescript}require(${JSON.stringify(entry)});`, { eval: true, execArgv: [] });
}
