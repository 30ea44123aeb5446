// Graceful drain (SIGTERM, POST /drain), as Istio's sidecar and Envoy Gateway's shutdown manager
// do it: stop taking connections, let each finish what it has in flight, and report when none is
// left, never sooner than the minimum drain duration (endpoints take that long to forget this pod).

import { performance } from 'node:perf_hooks';
import type { DrainConfig } from '../config/types';

export interface Drainable {
  /** Stops accepting; open connections close once idle. */
  startDrain(): void;
  /** Resolves once no connection is open. */
  whenIdle(): Promise<void>;
}

export type DrainOutcome = 'idle' | 'timeout';

export class Drain {
  readonly startedAt = performance.now();
  /** Settles when every connection closed (after the minimum duration) or the timeout passed. */
  readonly done: Promise<DrainOutcome>;
  outcome: DrainOutcome | undefined;

  constructor(targets: readonly Drainable[], private readonly config: DrainConfig) {
    for (const t of targets) t.startDrain();
    this.done = this.run(targets).then((outcome) => (this.outcome = outcome));
  }

  private async run(targets: readonly Drainable[]): Promise<DrainOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<DrainOutcome>((resolve) => { timer = setTimeout(() => resolve('timeout'), this.config.timeoutMs); });
    const idle = Promise.all(targets.map((t) => t.whenIdle())).then(async (): Promise<DrainOutcome> => {
      const left = this.startedAt + this.config.minDurationMs - performance.now();
      if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
      return 'idle';
    });
    const outcome = await Promise.race([idle, timedOut]);
    clearTimeout(timer);
    return outcome;
  }

  /** Seconds since the drain began. */
  get elapsedMs(): number {
    return performance.now() - this.startedAt;
  }
}
