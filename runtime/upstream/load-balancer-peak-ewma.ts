// Peak EWMA (Finagle's, and Envoy's contrib `peak_ewma`): power of two choices on a cost of
// latency × (requests in flight + 1). The latency estimate jumps to any slower answer at once
// (the peak) and comes down as an exponentially weighted moving average of later answers; while
// an endpoint gets no answers it decays toward zero over `decay_time`, so one that was slow is
// tried again in time rather than forgotten. Least request balances in-flight counts only: a slow
// endpoint still gets a request every time it is idle, enough to set the p99; this does not.

import type { Endpoint } from './cluster';
import type { LoadBalancer } from './load-balancer';
import { healthy, type PickContext } from './pick-context';

export const PEAK_EWMA_DEFAULT_DECAY_MS = 10_000;

/**
 * An endpoint nobody has heard from yet with requests in flight costs this (plus its count):
 * it has to answer once before it takes a share, so a new endpoint is not flooded (Finagle's
 * penalty). Idle and unheard-of, it costs 0 and is tried first.
 */
const UNMEASURED_PENALTY_MS = 1e6;

/** Folds one try's round trip (ms) into the endpoint's estimate at `now`. */
export function observeRtt(ep: Endpoint, rttMs: number, now: number, decayMs: number): void {
  if (rttMs >= ep.rttMs) {
    ep.rttMs = rttMs;
  } else {
    const w = Math.exp(-Math.max(0, now - ep.rttAt) / decayMs);
    ep.rttMs = ep.rttMs * w + rttMs * (1 - w);
  }
  ep.rttAt = now;
  ep.rttMeasured = true;
}

/** The estimate decayed for the time since the last answer, times the load it would join. */
export function costOf(ep: Endpoint, now: number, decayMs: number): number {
  if (!ep.rttMeasured) return ep.active === 0 ? 0 : UNMEASURED_PENALTY_MS + ep.active;
  return ep.rttMs * Math.exp(-Math.max(0, now - ep.rttAt) / decayMs) * (ep.active + 1);
}

export class PeakEwma implements LoadBalancer {
  constructor(private readonly endpoints: readonly Endpoint[], private readonly decayMs: number) {}

  pick(ctx: PickContext): Endpoint | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    let a: Endpoint | undefined;
    let b: Endpoint | undefined;
    // Two different healthy endpoints drawn at random (a few draws, then a scan: with most
    // endpoints down a scan is what finds the live ones).
    for (let tries = 0; tries < 4 && b === undefined; tries++) {
      const ep = eps[Math.floor(Math.random() * n)];
      if (ep === undefined || ep === a || ep === ctx.avoid || !healthy(ep, ctx)) continue;
      if (a === undefined) a = ep;
      else b = ep;
    }
    if (b === undefined) {
      const start = Math.floor(Math.random() * n);
      for (let i = 0; i < n && b === undefined; i++) {
        const ep = eps[(start + i) % n];
        if (ep === a || ep === ctx.avoid || !healthy(ep, ctx)) continue;
        if (a === undefined) a = ep;
        else b = ep;
      }
    }
    if (a === undefined) return ctx.avoid !== undefined && healthy(ctx.avoid, ctx) ? ctx.avoid : undefined;
    if (b === undefined) return a;
    return costOf(b, ctx.now, this.decayMs) < costOf(a, ctx.now, this.decayMs) ? b : a;
  }
}
