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
  | { readonly kind: 'total'; readonly total: number }
  | { readonly kind: 'done'; readonly done: number }
  | { readonly kind: 'finish' }
  | { readonly kind: 'outcome'; readonly outcome: CompactionOutcome }
  | {
      readonly kind: 'failed';
      readonly error: { name?: string; message?: string; code?: string; errno?: number; syscall?: string; path?: string };
    };

/**
 * compactFiles, on a worker thread when the base is at least `COMPACT_IN_THREAD_MIN_BYTES`.
 * The caller's lock covers the thread's writes: it is held until the returned promise settles,
 * and a thread cannot outlive its process. @internal
 */
export function compactFilesOffThread(
  job: CompactionJob,
  baseBytes: number,
  progressFor: (total: number) => ProgressReporter | undefined,
): Promise<CompactionOutcome> {
  if (baseBytes < COMPACT_IN_THREAD_MIN_BYTES) return compactFiles(job, progressFor);
  return new Promise((resolve, reject) => {
    // The thread has nobody to yield to: it works through in one go.
    const worker = startWorker({ ...job, sliceMs: Number.POSITIVE_INFINITY });
    let progress: ProgressReporter | undefined;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
      void worker.terminate();
    };
    worker.on('message', (message: CompactionMessage) => {
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
    });
    worker.on('error', (err) => settle(() => reject(err)));
    worker.on('exit', (code) => settle(() => reject(new Error(`the compaction thread stopped (exit code ${code}) before it finished`))));
  });
}

// Background work: on Linux a thread has a priority of its own (by its tid, from /proc), and at
// the lowest one the thread gives way to the cache's thread whenever both want a core. Set first
// thing, before the thread loads anything. Elsewhere the thread runs at the default priority.
const LOWEST_PRIORITY = `try { require('node:os').setPriority(Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()), 19); } catch {}`;

function startWorker(job: CompactionJob): Worker {
  const extension = extname(__filename);
  const entry = join(__dirname, `compaction-worker${extension}`);
  // None of the parent's flags or preloads; running from source (tests, bench), ts-node.
  const typescript = extension === '.ts' ? `require('ts-node/register/transpile-only');\n` : '';
  return new Worker(`${LOWEST_PRIORITY}\n${typescript}require(${JSON.stringify(entry)});`, { eval: true, workerData: job, execArgv: [] });
}
