// Admission for the whole proxy, in the spirit of Envoy's overload manager: a global cap on
// downstream connections kept below the file-descriptor limit (so the admin port and upstream
// connections always have descriptors left), per-listener caps, and memory thresholds that
// first stop new connections and then shed new requests with an over-limit reply.

import { readFileSync } from 'node:fs';
import type { Logger } from '../core/logger';
import { countIn } from '../core/count-in';
import type { SharedConnectionCounts } from '../workers/shared-connection-counts';

export type AdmitRefusal = 'listener_limit' | 'global_limit' | 'overload';

export interface OverloadConfig {
  /** Downstream connections across all listeners (Envoy: global_downstream_max_connections). */
  readonly maxDownstreamConnections: number;
  /** Resident memory the thresholds are fractions of; 0 turns the memory actions off. */
  readonly memoryLimitBytes: number;
  /** Fraction of the limit from which new connections are refused. */
  readonly stopAcceptingAt: number;
  /** Fraction of the limit from which new requests get an over-limit reply. */
  readonly shedRequestsAt: number;
  readonly refreshIntervalMs: number;
}

/** Descriptors kept for upstream connections, the admin port, plugin files and xDS. */
const FD_RESERVE_MAX = 256;
/** Log lines about refused connections, at most one per this many ms per reason. */
const REFUSAL_LOG_MS = 5000;

/**
 * The default global connection cap: half of what the soft descriptor limit leaves after the
 * reserve, because a `per_client` listener spends one upstream descriptor per client.
 */
export function defaultMaxDownstreamConnections(): number {
  const nofile = softFileLimit();
  if (!nofile) return 1_000_000;
  const reserve = Math.min(FD_RESERVE_MAX, Math.floor(nofile / 4));
  return Math.max(16, Math.floor((nofile - reserve) / 2));
}

function softFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The cgroup's memory limit (a container's), when there is one. */
export function cgroupMemoryLimit(): number {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const n = Number(readFileSync(file, 'utf8').trim());
      // cgroup v1 reports "no limit" as a number near 2^63.
      if (Number.isFinite(n) && n > 0 && n < 2 ** 52) return n;
    } catch {
      // not in a cgroup with a limit
    }
  }
  return 0;
}

export class OverloadManager {
  /** Downstream connections open across all listeners (of this thread). */
  connections = 0;
  /** With worker threads: the counts all of them share, which the caps apply to. */
  shared: SharedConnectionCounts | undefined;
  stopAccepting = false;
  shedding = false;
  readonly refused = new Map<string, number>();
  shedRequests = 0;
  private readonly lastLog = new Map<AdmitRefusal, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly config: OverloadConfig, private readonly logger: Logger,
    private readonly rss: () => number = () => process.memoryUsage.rss()) {}

  start(): void {
    if (this.config.memoryLimitBytes <= 0) return;
    this.refresh();
    this.timer = setInterval(() => this.refresh(), this.config.refreshIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Whether a new connection on `listener` (with `active` open) may stay; counts it if so. */
  admit(listener: string, active: number, listenerMax: number): AdmitRefusal | undefined {
    let refusal: AdmitRefusal | undefined;
    if (this.stopAccepting) refusal = 'overload';
    else if (this.shared) refusal = this.shared.tryAdmit(listener, listenerMax, this.config.maxDownstreamConnections);
    else if (this.connections >= this.config.maxDownstreamConnections) refusal = 'global_limit';
    else if (active >= listenerMax) refusal = 'listener_limit';
    if (!refusal) {
      this.connections++;
      return undefined;
    }
    const key = `${listener}\u0000${refusal}`;
    countIn(this.refused, key);
    const now = Date.now();
    if (now - (this.lastLog.get(refusal) ?? 0) >= REFUSAL_LOG_MS) {
      this.lastLog.set(refusal, now);
      const why = refusal === 'overload' ? `memory over ${this.config.stopAcceptingAt * 100}% of ${this.config.memoryLimitBytes} bytes`
        : refusal === 'global_limit' ? `${this.shared?.total ?? this.connections} downstream connections open (overload.max_downstream_connections)`
          : `${this.shared ? listenerMax : active} connections open on the listener (max_connections ${listenerMax})`;
      this.logger.log('warn', `refusing new connections on listener ${listener}: ${why}`);
    }
    return refusal;
  }

  /** A connection `admit` counted on `listener` closed. */
  released(listener: string): void {
    this.connections--;
    this.shared?.release(listener);
  }

  refresh(): void {
    const limit = this.config.memoryLimitBytes;
    const used = this.rss() / limit;
    const stop = used >= this.config.stopAcceptingAt;
    const shed = used >= this.config.shedRequestsAt;
    if (stop !== this.stopAccepting || shed !== this.shedding) {
      this.logger.log(stop ? 'warn' : 'info', `overload: resident memory at ${(used * 100).toFixed(0)}% of ${limit} bytes; `
        + `${stop ? 'refusing' : 'accepting'} new connections, ${shed ? 'shedding' : 'serving'} new requests`);
    }
    this.stopAccepting = stop;
    this.shedding = shed;
  }
}
