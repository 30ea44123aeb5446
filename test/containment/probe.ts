// What the containment suite measures while an attack runs: a healthy client's latency on
// another listener (closed loop: one request in flight, sent again as soon as it is answered)
// and the proxy's resident memory, sampled from /proc.

import { readFileSync } from 'node:fs';
import net from 'node:net';

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Requests that were never answered (the socket closed or errored under them). */
  readonly lost: number;
}

export class LatencyProbe {
  private readonly samples: number[] = [];
  private stopped = false;
  private lost = 0;
  private socket!: net.Socket;
  private sentAt = 0;
  private received = '';
  private done: (() => void) | undefined;

  private constructor(private readonly port: number, private readonly request: string, private readonly reply: string) {}

  /** Redis PING through `port`, answered with +PONG. */
  static async redis(port: number): Promise<LatencyProbe> {
    const p = new LatencyProbe(port, 'PING\r\n', '+PONG\r\n');
    await p.connect();
    p.send();
    return p;
  }

  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket = net.connect(this.port, '127.0.0.1', () => resolve());
      this.socket.setNoDelay(true);
      this.socket.once('error', (err) => { this.lost++; reject(err); });
      this.socket.on('close', () => { if (!this.stopped) this.lost++; this.stopped = true; this.done?.(); });
      this.socket.on('data', (d) => this.onData(d));
    });
  }

  private send(): void {
    this.received = '';
    this.sentAt = performance.now();
    this.socket.write(this.request);
  }

  private onData(d: Buffer): void {
    this.received += d.toString('latin1');
    if (this.received.length < this.reply.length) return;
    if (this.received !== this.reply) {
      this.lost++;
      this.stopped = true;
    }
    this.samples.push(performance.now() - this.sentAt);
    if (this.stopped) {
      this.done?.();
      return;
    }
    this.send();
  }

  /** Stops after the request in flight is answered (or 2 s) and summarises. */
  async stop(): Promise<LatencySummary> {
    if (!this.stopped) {
      await new Promise<void>((resolve) => {
        this.done = resolve;
        this.stopped = true;
        setTimeout(() => { this.lost++; resolve(); }, 2000).unref();
      });
    }
    this.socket.destroy();
    const s = [...this.samples].sort((a, b) => a - b);
    const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : Number.NaN);
    return { count: s.length, p50: at(0.5), p99: at(0.99), max: s.length ? s[s.length - 1] : Number.NaN, lost: this.lost };
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
