// What the containment suite measures while an attack runs: a healthy client's latency on
// another listener (closed loop: one request in flight, sent again as soon as it is answered)
// and the proxy's resident memory, sampled from /proc.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Requests that were never answered (the socket closed or errored under them). */
  readonly lost: number;
}

/**
 * A closed-loop Redis PING client in its own worker thread, so that what the test's own thread
 * does (writing megabytes of attack traffic) does not show up as proxy latency.
 */
export class LatencyProbe {
  private constructor(private readonly worker: Worker) {}

  static async redis(port: number): Promise<LatencyProbe> {
    const worker = new Worker(join(__dirname, 'probe-worker.js'), { workerData: { port, request: 'PING\r\n', reply: '+PONG\r\n' } });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (m: { started?: boolean; error?: string }) => (m.started ? resolve() : reject(new Error(m.error))));
      worker.once('error', reject);
    });
    return new LatencyProbe(worker);
  }

  /** Stops after the request in flight is answered (or 2 s) and summarises. */
  async stop(): Promise<LatencySummary> {
    const summary = await new Promise<LatencySummary>((resolve, reject) => {
      this.worker.once('message', resolve);
      this.worker.once('error', reject);
      this.worker.postMessage('stop');
    });
    await this.worker.terminate();
    return summary;
  }
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Samples a process's RSS every 25 ms; `stop()` gives the peak. */
export class RssSampler {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 25);
  }

  private sample(): void {
    try {
      this.peak = Math.max(this.peak, rssBytes(this.pid));
    } catch {
      // the process is gone; the test notices through its probe
    }
  }

  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

export const MiB = 1024 * 1024;
