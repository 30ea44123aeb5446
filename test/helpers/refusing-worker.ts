// A worker thread that speaks the primary's protocol and misbehaves on purpose: worker
// `REFUSE.worker` answers generation `REFUSE.generation`'s prepare with an error, and worker 1
// never answers generation HANG's (a publish then waits, holding the pool's queue). Used to check
// that a generation one worker cannot take is committed by none, and stop() against a busy queue.

import { parentPort, workerData } from 'node:worker_threads';
import type { FromWorker, ToWorker, WorkerData } from '../../runtime/workers/worker-protocol';

const REFUSE = { worker: 1, generation: 2 };
const HANG = 99;
const data = workerData as WorkerData;
const send = (m: FromWorker) => parentPort!.postMessage(m);
let current = data.generation.id;
let pending: number | undefined;

parentPort!.on('message', (m: ToWorker) => {
  if (m.type === 'prepare' && m.generation.id === HANG && data.index === 1) {
    // No answer.
  } else if (m.type === 'prepare') {
    const refuse = data.index === REFUSE.worker && m.generation.id === REFUSE.generation;
    pending = refuse ? undefined : m.generation.id;
    send({ type: 'prepared', id: m.generation.id, ...(refuse ? { error: 'out of plugin memory (test)' } : {}) });
  } else if (m.type === 'commit' && m.id === pending) {
    current = m.id;
  } else if (m.type === 'abort') {
    pending = undefined;
  } else if (m.type === 'query') {
    send({ type: 'answer', id: m.id, value: { generation: current, connections: 0, plugins: [] } });
  } else if (m.type === 'stop') {
    process.exit(0);
  }
});
send({ type: 'ready' });
