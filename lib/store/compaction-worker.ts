// The entry of the thread that compacts large cache files (see compaction-thread.ts): it runs
// compactFiles with its own heap, so decoding a big base never pauses the cache's event loop.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { compactFiles, type CompactionJob } from './compaction';
import type { CompactionMessage } from './compaction-thread';

const port = parentPort;
if (port === null) throw new Error('compaction-worker runs as a worker thread only');
const send = (message: CompactionMessage) => port.postMessage(message);

// Background work: on Linux a thread has a priority of its own, and at the lowest one this
// thread gives way to the cache's thread whenever both want a core. Elsewhere it runs as is.
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, 19);
} catch {
  // no /proc, or no permission: the default priority
}

compactFiles(workerData as CompactionJob, (total) => {
  send({ kind: 'total', total });
  return { update: (done) => send({ kind: 'done', done }), finish: () => send({ kind: 'finish' }) };
}).then(
  (outcome) => send({ kind: 'outcome', outcome }),
  (err: unknown) => {
    const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as NodeJS.ErrnoException;
    send({ kind: 'failed', error: { name: e.name, message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path } });
  },
);
