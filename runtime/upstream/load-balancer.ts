// Load-balancing policies behind one interface (grpc-js keeps one file per policy; these are
// small enough to share one, except the ring hash). Each picks among the endpoints healthy at
// `now`, taking `avoid` (the endpoint a retried request just failed on) only when nothing else is
// healthy. A new policy object is built whenever the endpoint list changes.

import type { Endpoint } from './cluster';
import type { ClusterConfig } from '../config/types';
import { PEAK_EWMA_DEFAULT_DECAY_MS, PeakEwma } from './load-balancer-peak-ewma';
import { RingHash } from './load-balancer-ring-hash';
import { healthy, type PickContext } from './pick-context';

export type { PickContext } from './pick-context';

export type LbPolicy = 'round_robin' | 'least_request' | 'random' | 'ring_hash' | 'peak_ewma';

export interface LoadBalancer {
  pick(ctx: PickContext): Endpoint | undefined;
}

export class RoundRobin implements LoadBalancer {
  private next = 0;
  constructor(private readonly endpoints: readonly Endpoint[]) {}

  pick(ctx: PickContext): Endpoint | undefined {
    const eps = this.endpoints;
    const avoid = ctx.avoid;
    let fallback: Endpoint | undefined;
    for (let tries = 0; tries < eps.length; tries++) {
      const ep = eps[this.next];
      this.next = (this.next + 1) % eps.length;
      if (!healthy(ep, ctx)) continue;
      if (ep !== avoid) return ep;
      fallback = ep;
    }
    return fallback;
  }
}

export class RandomPick implements LoadBalancer {
  constructor(private readonly endpoints: readonly Endpoint[]) {}

  pick(ctx: PickContext): Endpoint | undefined {
    const eps = this.endpoints;
    const avoid = ctx.avoid;
    const start = Math.floor(Math.random() * eps.length);
    let fallback: Endpoint | undefined;
    for (let i = 0; i < eps.length; i++) {
      const ep = eps[(start + i) % eps.length];
      if (!healthy(ep, ctx)) continue;
      if (ep !== avoid) return ep;
      fallback = ep;
    }
    return fallback;
  }
}

/**
 * Envoy's least request: of `choiceCount` different endpoints drawn at random (default 2, the
 * power of two choices), the one with fewer requests active. A slow endpoint piles up active
 * requests and is drawn less; with a choice count of at least the number of endpoints, it gets a
 * request only when it has fewer in flight than every other.
 */
export class LeastRequest implements LoadBalancer {
  private readonly random: RandomPick;
  /** Scratch for drawing distinct indices (a partial Fisher–Yates shuffle). */
  private readonly order: number[];

  constructor(private readonly endpoints: readonly Endpoint[], private readonly choiceCount = 2) {
    this.random = new RandomPick(endpoints);
    this.order = endpoints.map((_, i) => i);
  }

  pick(ctx: PickContext): Endpoint | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    if (n < 2) return this.random.pick(ctx);
    const k = Math.min(n, Math.max(2, this.choiceCount));
    const order = this.order;
    let best: Endpoint | undefined;
    for (let d = 0; d < k; d++) {
      const r = d + Math.floor(Math.random() * (n - d));
      const t = order[d];
      order[d] = order[r];
      order[r] = t;
      const ep = eps[order[d]];
      if (!healthy(ep, ctx) || ep === ctx.avoid) continue;
      if (best === undefined || ep.active < best.active) best = ep;
    }
    return best ?? this.random.pick(ctx);
  }
}

export function createLoadBalancer(config: Pick<ClusterConfig, 'lbPolicy' | 'leastRequestChoiceCount' | 'peakEwmaDecayMs'>, endpoints: readonly Endpoint[]): LoadBalancer {
  switch (config.lbPolicy) {
    case 'round_robin': return new RoundRobin(endpoints);
    case 'random': return new RandomPick(endpoints);
    case 'least_request': return new LeastRequest(endpoints, config.leastRequestChoiceCount);
    case 'ring_hash': return new RingHash(endpoints);
    case 'peak_ewma': return new PeakEwma(endpoints, config.peakEwmaDecayMs ?? PEAK_EWMA_DEFAULT_DECAY_MS);
  }
}
