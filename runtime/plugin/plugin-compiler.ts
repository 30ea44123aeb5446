// Accepting a plugin off the event loop. V8 cannot interrupt Wasm or a compile on the main
// thread without killing Node, but a worker thread can be terminated: reading, compiling,
// metering and the canary all run in one, one file at a time, each within a deadline. The
// compiled module comes back by postMessage (V8 shares the compiled code; nothing is compiled
// twice). The worker exists only while there is work: it ends after a
// short idle time, so the steady state carries none of the load-time tools.

import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { PluginError, type MeltemiErrorCode } from '../core/errors';
import type { AcceptOptions, AcceptResult } from './plugin-accept';

export interface CompileJob {
  readonly id: number;
  readonly file: string;
  readonly opts: AcceptOptions;
}

export type CompileReply =
  | { readonly ready: boolean; readonly message?: string; readonly id?: undefined }
  | { readonly id: number; readonly ok: true; readonly result: AcceptResult }
  | { readonly id: number; readonly ok: false; readonly code: MeltemiErrorCode; readonly message: string; readonly sha256?: string };

interface Pending {
  readonly job: CompileJob;
  readonly timeoutMs: number;
  readonly resolve: (r: AcceptResult) => void;
  readonly reject: (e: Error) => void;
}

const WORKER_FILE = join(__dirname, 'plugin-compiler-worker.js');
/** Time a new worker may take to start (not charged to the first job). */
const WORKER_START_MS = 30_000;

export class PluginCompiler {
  private worker: Worker | undefined;
  private workerReady = false;
  private readonly queue: Pending[] = [];
  private current: Pending | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private idle: NodeJS.Timeout | undefined;
  private nextId = 1;
  /** Workers started so far (tests check that a stuck one was replaced). */
  workersStarted = 0;

  constructor(private readonly idleMs = 2000) {}

  /** Accepts `file` within `timeoutMs`; rejects with a PluginError naming the file. */
  accept(file: string, opts: AcceptOptions, timeoutMs: number): Promise<AcceptResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, file, opts }, timeoutMs, resolve, reject });
      this.pump();
    });
  }

  /** Ends the worker now (pending jobs fail). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    clearTimeout(this.idle);
    clearTimeout(this.deadline);
    const failed = this.current ? [this.current, ...this.queue] : [...this.queue];
    this.current = undefined;
    this.queue.length = 0;
    for (const p of failed) p.reject(new PluginError('MELTEMI_PLUGIN_INVALID', p.job.file, 'the plugin compiler was closed'));
    await w?.terminate();
  }

  private pump(): void {
    if (this.current || this.queue.length === 0) return;
    clearTimeout(this.idle);
    const p = this.queue.shift()!;
    this.current = p;
    const worker = this.ensureWorker();
    worker.ref();
    if (this.workerReady) this.post(p);
    else this.arm(p, WORKER_START_MS, 'the plugin compiler worker did not start');
  }

  private post(p: Pending): void {
    this.arm(p, p.timeoutMs, `accepting the plugin (read, compile, metering, self-test) took longer than ${p.timeoutMs} ms`);
    this.worker!.postMessage(p.job);
  }

  private arm(p: Pending, ms: number, why: string): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      this.discardWorker();
      this.fail(p, new PluginError('MELTEMI_PLUGIN_TIMEOUT', p.job.file, `${why}; its worker was stopped`));
    }, ms);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    // The JS heap is bounded; guest memory is bounded by the rewritten memory maximum.
    const worker = new Worker(WORKER_FILE, { resourceLimits: { maxOldGenerationSizeMb: 256 } });
    this.workersStarted++;
    this.workerReady = false;
    worker.on('message', (reply: CompileReply) => this.onReply(worker, reply));
    worker.on('error', (err) => this.onWorkerGone(worker, `the plugin compiler failed: ${err.message}`));
    worker.on('exit', (code) => this.onWorkerGone(worker, `the plugin compiler exited (code ${code})`));
    this.worker = worker;
    return worker;
  }

  private onReply(worker: Worker, reply: CompileReply): void {
    if (reply.id === undefined) {
      if (worker !== this.worker) return;
      if (!reply.ready) {
        const p = this.current;
        this.discardWorker();
        if (p) this.fail(p, new PluginError('MELTEMI_PLUGIN_INVALID', p.job.file, `the plugin compiler cannot start: ${reply.message}`));
        return;
      }
      this.workerReady = true;
      if (this.current) this.post(this.current);
      return;
    }
    const p = this.current;
    if (worker !== this.worker || !p || p.job.id !== reply.id) return;
    if (reply.ok) this.finish(() => p.resolve(reply.result));
    else this.finish(() => p.reject(new PluginError(reply.code, p.job.file, reply.message.replace(`${p.job.file}: `, ''), { sha256: reply.sha256 })));
  }

  private onWorkerGone(worker: Worker, why: string): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    const p = this.current;
    if (p) this.fail(p, new PluginError('MELTEMI_PLUGIN_INVALID', p.job.file, why));
  }

  private fail(p: Pending, err: Error): void {
    if (this.current !== p) return;
    this.finish(() => p.reject(err));
  }

  private finish(settle: () => void): void {
    clearTimeout(this.deadline);
    this.current = undefined;
    settle();
    if (this.queue.length > 0) {
      this.pump();
      return;
    }
    this.worker?.unref();
    this.idle = setTimeout(() => this.discardWorker(), this.idleMs);
    this.idle.unref();
  }

  private discardWorker(): void {
    const w = this.worker;
    this.worker = undefined;
    void w?.terminate();
  }
}

let shared: PluginCompiler | undefined;

/** One compiler per process: every registry's jobs queue on the same worker. */
export function sharedPluginCompiler(): PluginCompiler {
  shared ??= new PluginCompiler();
  return shared;
}
