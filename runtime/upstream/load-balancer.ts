// Load-balancing policies behind one interface (grpc-js keeps one file per policy; these are
// small enough to share one, except the ring hash). Each picks among the endpoints healthy at
// `now`, taking `avoid` (the endpoint a retried request just failed on) only when nothing else is
// healthy. A new policy object is built whenever the endpoint list changes.

import type { Endpoint } from './cluster';
import { RingHash } from './load-balancer-ring-hash';
import { healthy, type PickContext } from './pick-context';

export type { PickContext } from './pick-context';

export type LbPolicy = 'round_robin' | 'least_request' | 'random' | 'ring_hash';

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
 * Envoy's least request with the power of two choices: of two endpoints drawn at random, the one
 * with fewer requests active. A slow endpoint piles up active requests and is drawn less.
 */
export class LeastRequest implements LoadBalancer {
  private readonly random: RandomPick;
  constructor(private readonly endpoints: readonly Endpoint[]) {
    this.random = new RandomPick(endpoints);
  }

  pick(ctx: PickContext): Endpoint | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    if (n < 2) return this.random.pick(ctx);
    // Two different endpoints: a pair holds the idle one in 2 of 3 draws among three.
    const i = Math.floor(Math.random() * n);
    let j = Math.floor(Math.random() * (n - 1));
    if (j >= i) j++;
    const a = eps[i];
    const b = eps[j];
    const usable = (ep: Endpoint) => healthy(ep, ctx) && ep !== ctx.avoid;
    if (usable(a) && usable(b)) return b.active < a.active ? b : a;
    if (usable(a)) return a;
    if (usable(b)) return b;
    return this.random.pick(ctx);
  }
}

export function createLoadBalancer(policy: LbPolicy, endpoints: readonly Endpoint[]): LoadBalancer {
  switch (policy) {
    case 'round_robin': return new RoundRobin(endpoints);
    case 'random': return new RandomPick(endpoints);
    case 'least_request': return new LeastRequest(endpoints);
    case 'ring_hash': return new RingHash(endpoints);
  }
}
