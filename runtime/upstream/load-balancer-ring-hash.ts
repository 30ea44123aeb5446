// Consistent hashing on a ring (Envoy's ring_hash): every endpoint owns many points of a 32-bit
// ring; a request goes to the owner of the first point at or after its hash. Adding one endpoint
// to N takes about 1/(N+1) of the keys, each from the endpoint that had it; removing or ejecting
// one moves only its keys (to the next healthy owners). Requests without a hash take a random point.

import type { Endpoint } from './cluster';
import type { LoadBalancer } from './load-balancer';
import { healthy, type PickContext } from './pick-context';

/**
 * Points per endpoint, the same whatever the number of endpoints: an endpoint that joins must
 * not change the others' points, or keys would move between them too (Envoy sizes the ring by
 * minimum_ring_size instead). 400 keeps shares within a few percent of equal.
 */
const POINTS_PER_ENDPOINT = 400;
const MAX_RING_SIZE = 1 << 22;

/** FNV-1a over the string's UTF-16 units, then murmur3's finaliser: fast, and well spread. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class RingHash implements LoadBalancer {
  private readonly points: Uint32Array;
  private readonly owners: Endpoint[];

  constructor(endpoints: readonly Endpoint[]) {
    const perEndpoint = endpoints.length === 0 ? 0 : Math.max(1, Math.min(POINTS_PER_ENDPOINT, Math.floor(MAX_RING_SIZE / endpoints.length)));
    const ring: Array<[number, Endpoint]> = [];
    // Points are named by the endpoint's address, not its position: the same endpoint keeps its
    // points whatever else joins or leaves.
    for (const ep of endpoints) for (let i = 0; i < perEndpoint; i++) ring.push([hash32(`${ep.label}_${i}`), ep]);
    ring.sort((a, b) => a[0] - b[0]);
    this.points = Uint32Array.from(ring, (r) => r[0]);
    this.owners = ring.map((r) => r[1]);
  }

  pick(ctx: PickContext): Endpoint | undefined {
    const { avoid, hash } = ctx;
    const n = this.points.length;
    if (n === 0) return undefined;
    const h = hash ?? Math.floor(Math.random() * 2 ** 32);
    // The first point at or after h (binary search), wrapping at the end.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    let fallback: Endpoint | undefined;
    for (let i = 0; i < n; i++) {
      const ep = this.owners[(lo + i) % n];
      if (!healthy(ep, ctx)) continue;
      if (ep !== avoid) return ep;
      fallback ??= ep;
    }
    return fallback;
  }
}
