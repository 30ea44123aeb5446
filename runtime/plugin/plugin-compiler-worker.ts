// Entry point of the plugin compiler worker thread: accepts one plugin file per message and
// answers with the compiled module (shared with the main thread, not recompiled) or the error.

import { parentPort } from 'node:worker_threads';
import { isMeltemiError, PluginError } from '../core/errors';
import { acceptPlugin } from './plugin-accept';
import type { CompileJob, CompileReply } from './plugin-compiler';

const port = parentPort;
if (!port) throw new Error('plugin-compiler-worker must run in a worker thread');

port.postMessage({ ready: true });

port.on('message', (job: CompileJob) => {
  acceptPlugin(job.file, job.opts).then(
    (result) => port.postMessage({ id: job.id, ok: true, result } satisfies CompileReply),
    (err: unknown) => port.postMessage({
      id: job.id,
      ok: false,
      code: isMeltemiError(err) ? err.code : 'MELTEMI_PLUGIN_INVALID',
      message: err instanceof Error ? err.message : String(err),
      sha256: err instanceof PluginError ? err.sha256 : undefined,
    } satisfies CompileReply),
  );
});
