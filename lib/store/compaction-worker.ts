// The entry of the thread that compacts large cache files (started, at the lowest priority, by
// compaction-thread.ts): compactFiles with a heap of its own, so decoding a big base never
// pauses the cache's event loop. It says it is ready once loaded and then waits for its job: the
// thread is started before the job is known (see CompactionThread).
import { parentPort } from 'node:worker_threads';
import { compactFiles, type CompactionJob } from './compaction';
import type { CompactionMessage } from './compaction-thread';

const port = parentPort;
if (port === null) throw new Error('compaction-worker runs as a worker thread only');
const send = (message: CompactionMessage) => port.postMessage(message);

port.once('message', (job: CompactionJob) => {
  compactFiles(job, (total) => {
    send({ kind: 'total', total });
    return { update: (done) => send({ kind: 'done', done }), finish: () => send({ kind: 'finish' }) };
  }).then(
    (outcome) => send({ kind: 'outcome', outcome }),
    (err: unknown) => {
      const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as NodeJS.ErrnoException;
      send({ kind: 'failed', error: { name: e.name, message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path } });
    },
  );
});
send({ kind: 'ready' });
