// The primary's side of a multi-worker proxy: it binds every listener's socket (and never
// accepts on it), starts the worker threads, hands each the same generation in two phases
// (every worker prepares it, then all commit, or all abort), replaces a worker that dies, and
// answers admin requests from the workers' reports.

import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];
import type { Config } from '../config/types';
import type { ListenBinder } from '../core/listen';
import { LOG_LEVELS, type Logger } from '../core/logger';
import { MeltemiError } from '../core/errors';
import { BoundSocket } from './shared-listen-socket';
import { SharedConnectionCounts } from './shared-connection-counts';
import type { FromWorker, Generation, ToWorker, WorkerData, WorkerStatus } from './worker-protocol';
import { Waiters } from '../core/waiters';

const WORKER_FILE = join(__dirname, 'worker-main.js');
/** Time a worker may take to start, or to prepare a generation or answer a query. */
const START_TIMEOUT_MS = 60_000;
const REPLY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
/** Replacement of a worker that died: backoff between attempts, reset once one lived this long. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5_000;
const STABLE_MS = 30_000;

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  /** Its listeners are open (the worker said ready). */
  ready: boolean;
  threadId: number | undefined;
  startedAt: number;
  restarts: number;
  nextDelay: number;
  /** The generation it runs. */
  generation: number;
  /** Replies awaited, by `prepared:<generation>` or `answer:<query>`. */
  readonly waiting: Map<string, (m: FromWorker | undefined) => void>;
  /** Answered the drain (or ended during it). */
  drained: boolean;
}

export interface GenerationRecord {
  readonly id: number;
  readonly at: string;
}

export class WorkerPool {
  private readonly sockets = new Map<string, BoundSocket>();
  /** Connection counts the workers share; a dead worker's row is cleared. */
  private readonly counts: SharedConnectionCounts;
  private readonly slots: Slot[];
  private committed: Generation | undefined;
  private nextQuery = 1;
  private stopping = false;
  /** Generation changes and worker starts run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Each worker's metrics at the last scrape, and the counters of workers that died since start. */
  private readonly lastMetrics = new Map<number, MetricsJson>();
  private retired: MetricsJson = [];
  private retiring: Promise<void> = Promise.resolve();
  lastCommitted: GenerationRecord | undefined;
  lastRejected: (GenerationRecord & { readonly worker: number; readonly reason: string }) | undefined;

  /** `workerFile`: the thread's script (tests give one that speaks the protocol and misbehaves). */
  constructor(private readonly config: Config, size: number, private readonly logger: Logger, private readonly workerFile = WORKER_FILE) {
    this.counts = SharedConnectionCounts.create(config.listeners.map((l) => l.name), size);
    this.slots = Array.from({ length: size }, (_, index) => ({ index, worker: undefined, ready: false, threadId: undefined, startedAt: 0, restarts: 0, nextDelay: RESTART_MIN_MS, generation: 0, waiting: new Map(), drained: false }));
  }

  get size(): number {
    return this.slots.length;
  }

  /** Workers running now (one being replaced is not). */
  get running(): number {
    return this.slots.filter((s) => s.worker && s.ready).length;
  }

  /** Binds a listener's socket for the workers; the primary's own listener never accepts. */
  readonly binder: ListenBinder = async (_server, l) => {
    const socket = await BoundSocket.bind(l.address, l.port, `listener ${l.name}`);
    this.sockets.set(l.name, socket);
    return socket.port;
  };

  /** Starts every worker on `first`; rejects (and stops those started) if one cannot start. */
  async start(first: Generation): Promise<void> {
    this.committed = first;
    this.lastCommitted = { id: first.id, at: new Date().toISOString() };
    try {
      await Promise.all(this.slots.map((s) => this.spawn(s)));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private spawn(slot: Slot): Promise<void> {
    // A replacement queued behind a publish may come up after stop() began: the bound sockets
    // are closing, and their descriptor numbers may already name someone else's.
    if (this.stopping) return Promise.resolve();
    const generation = this.committed!;
    const fds = Object.fromEntries([...this.sockets].map(([name, s]) => [name, { fd: s.fd, port: s.port }]));
    const logLevel = LOG_LEVELS.find((l) => this.logger.enabled(l)) ?? 'silent';
    const connectionCounts = { buffer: this.counts.buffer, listeners: this.counts.listeners };
    const data: WorkerData = { index: slot.index, config: this.config, fds, generation, logLevel, connectionCounts };
    const worker = new Worker(this.workerFile, { workerData: data });
    slot.worker = worker;
    slot.threadId = worker.threadId;
    slot.generation = generation.id;
    slot.startedAt = performance.now();
    return new Promise<void>((resolve, reject) => {
      let started = false;
      const timer = setTimeout(() => { void worker.terminate(); }, START_TIMEOUT_MS);
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          started = true;
          slot.ready = true;
          clearTimeout(timer);
          resolve();
        } else if (m.type === 'failed') {
          reject(new MeltemiError('MELTEMI_LISTEN_FAILED', `worker ${slot.index} could not start: ${m.message}`));
        } else if (m.type === 'drained') {
          slot.drained = true;
          this.checkDrained();
        } else if (m.type === 'log') {
          this.logger.log(m.level, m.message, { worker: slot.index, ...m.fields });
        } else if (m.type === 'prepared' || m.type === 'answer') {
          const key = `${m.type}:${m.id}`;
          const done = slot.waiting.get(key);
          slot.waiting.delete(key);
          done?.(m);
        }
      });
      worker.on('error', (err) => this.logger.log('error', `worker ${slot.index} failed: ${err.message}`, { stack: err.stack }));
      worker.once('exit', (code) => {
        clearTimeout(timer);
        for (const done of slot.waiting.values()) done(undefined);
        slot.waiting.clear();
        if (slot.worker !== worker) return;
        slot.worker = undefined;
        slot.ready = false;
        if (!started) {
          reject(new MeltemiError('MELTEMI_LISTEN_FAILED', `worker ${slot.index} ended (exit ${code}) before it was ready`));
          return;
        }
        if (this.stopping || this.draining) {
          // Not replaced while draining: a new worker would only take connections to close them.
          slot.drained = true;
          this.checkDrained();
          return;
        }
        this.counts.clear(slot.index);
        this.retire(slot.index);
        this.replace(slot, code);
      });
    });
  }

  /** A worker that died is started again on the committed generation, after a backoff if it keeps dying. */
  private replace(slot: Slot, code: number): void {
    const lived = performance.now() - slot.startedAt;
    if (lived > STABLE_MS) slot.nextDelay = RESTART_MIN_MS;
    const delay = slot.nextDelay;
    slot.nextDelay = Math.min(RESTART_MAX_MS, slot.nextDelay * 2);
    slot.restarts++;
    this.logger.log('error', `worker ${slot.index} ended (exit ${code}); its connections closed; starting a new one in ${delay} ms`);
    setTimeout(() => {
      if (this.stopping || this.draining) return;
      this.serially(() => this.spawn(slot)).catch((err: Error) => {
        this.logger.log('error', err.message);
        if (!slot.worker && !this.stopping) this.replace(slot, -1);
      });
    }, delay).unref();
  }

  private serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private draining = false;
  private readonly drained = new Waiters();

  /** Graceful drain: every worker drains its listeners (Drainable, with whenIdle). */
  startDrain(): void {
    this.draining = true;
    for (const s of this.slots) {
      if (s.worker) s.worker.postMessage({ type: 'drain' } satisfies ToWorker);
      else s.drained = true;
    }
  }

  /** Closes the bound sockets of `names` (a drain: the workers close their duplicates themselves). */
  closeListenSockets(names: readonly string[]): void {
    for (const name of names) {
      this.sockets.get(name)?.close();
      this.sockets.delete(name);
    }
  }

  /** Resolves once every worker reported its drain finished (or ended). */
  whenIdle(): Promise<void> {
    return this.drained.wait(this.allDrained);
  }

  private checkDrained(): void {
    if (this.allDrained) this.drained.release();
  }

  private get allDrained(): boolean {
    return this.draining && this.slots.every((s) => s.drained);
  }

  private ask(slot: Slot, message: ToWorker, key: string): Promise<FromWorker | undefined> {
    const worker = slot.worker;
    if (!worker) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { slot.waiting.delete(key); resolve(undefined); }, REPLY_TIMEOUT_MS);
      slot.waiting.set(key, (m) => { clearTimeout(timer); resolve(m); });
      worker.postMessage(message);
    });
  }

  /**
   * Hands `generation` to every worker: all prepare it, then all commit it; if one cannot, all
   * abort and keep the one they run. Resolves whether it was committed.
   */
  publish(generation: Generation): Promise<boolean> {
    return this.serially(async () => {
      if (this.stopping) return false;
      const live = this.slots.filter((s) => s.worker);
      const replies = await Promise.all(live.map((s) => this.ask(s, { type: 'prepare', generation }, `prepared:${generation.id}`)));
      const failed = replies.findIndex((r) => r?.type !== 'prepared' || r.error !== undefined);
      if (failed >= 0) {
        const r = replies[failed];
        const reason = r === undefined ? 'no answer (the worker ended or did not reply in time)' : r.type === 'prepared' ? r.error! : 'unexpected reply';
        for (const s of live) s.worker?.postMessage({ type: 'abort', id: generation.id } satisfies ToWorker);
        this.lastRejected = { id: generation.id, at: new Date().toISOString(), worker: live[failed].index, reason };
        this.logger.log('error', `generation ${generation.id} rejected by worker ${live[failed].index}: ${reason}; every worker keeps generation ${this.committed?.id}`);
        return false;
      }
      for (const s of live) {
        s.worker?.postMessage({ type: 'commit', id: generation.id } satisfies ToWorker);
        s.generation = generation.id;
      }
      this.committed = generation;
      this.lastCommitted = { id: generation.id, at: new Date().toISOString() };
      return true;
    });
  }

  private async queryAll(what: 'metrics' | 'status'): Promise<Array<{ slot: Slot; value: unknown }>> {
    const answers = await Promise.all(this.slots.map(async (slot) => {
      const id = this.nextQuery++;
      const m = await this.ask(slot, { type: 'query', id, what }, `answer:${id}`);
      return { slot, value: m?.type === 'answer' ? m.value : undefined };
    }));
    return answers;
  }

  /** Each worker's report; a worker that is being replaced has none. */
  async statuses(): Promise<Array<{ worker: number; thread_id: number | undefined; running: boolean; generation: number; restarts: number; status: WorkerStatus | undefined }>> {
    return (await this.queryAll('status')).map(({ slot, value }) => ({
      worker: slot.index, thread_id: slot.worker ? slot.threadId : undefined, running: slot.worker !== undefined,
      generation: slot.generation, restarts: slot.restarts, status: value as WorkerStatus | undefined,
    }));
  }

  /** Every worker's metrics and `own` (the primary's), summed into one registry's text. */
  async metrics(own: MetricsJson): Promise<string> {
    const answers = await this.queryAll('metrics');
    const workers: MetricsJson[] = [];
    for (const { slot, value } of answers) {
      if (!Array.isArray(value)) continue;
      this.lastMetrics.set(slot.index, value as MetricsJson);
      workers.push(value as MetricsJson);
    }
    await this.retiring;
    // Imported here: this module is loaded by every worker thread too, which never aggregates.
    const { AggregatorRegistry } = await import('prom-client');
    return AggregatorRegistry.aggregate([own, this.retired, ...workers]).metrics();
  }

  /**
   * Keeps the counters a dead worker last reported, so the sums never go down (Prometheus would
   * read a drop as a counter reset). What it counted after the last scrape is lost with it.
   */
  private retire(index: number): void {
    const last = this.lastMetrics.get(index);
    this.lastMetrics.delete(index);
    if (!last) return;
    const kept = last.filter((m) => String(m.type) === 'counter' || String(m.type) === 'histogram');
    this.retiring = this.retiring.then(async () => {
      const { AggregatorRegistry } = await import('prom-client');
      this.retired = (await AggregatorRegistry.aggregate([this.retired, kept]).getMetricsAsJSON()) as MetricsJson;
    });
  }

  /** Stops every worker (each closes its listeners and connections) and closes the bound sockets. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.stopWorkers();
    // What was queued (a publish, a replacement) sees `stopping` and ends; then no thread can
    // still be about to duplicate a descriptor this closes.
    await this.queue;
    await this.stopWorkers();
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }

  private async stopWorkers(): Promise<void> {
    await Promise.all(this.slots.map(async (slot) => {
      const worker = slot.worker;
      if (!worker) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ type: 'stop' } satisfies ToWorker);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((resolve) => { timer = setTimeout(resolve, STOP_TIMEOUT_MS); })]);
      clearTimeout(timer);
      await worker.terminate();
    }));
  }

  /** The worker threads (tests end one to see it replaced). */
  get threads(): ReadonlyArray<Worker | undefined> {
    return this.slots.map((s) => s.worker);
  }
}
