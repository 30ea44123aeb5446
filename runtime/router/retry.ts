// The retry decision and back-off, apart from the router's plumbing. Envoy's rules, for any
// protocol: a retry needs the route's policy to name the failure's condition, tries left, time
// left, a request that is safe to send twice, and room in the cluster's retry budget — requests
// being retried may be at most the budget's share of the cluster's active requests (cluster
// retry_budget; default half, at least 10; "active" is the most seen in the last 1-2 s), so
// retries cannot multiply the load of an outage.

import type { CompiledRetryPolicy } from './route-table';
import type { ActiveRequest } from '../proxy/active-request';

export type RetryRefusal = 'policy' | 'limit' | 'unsafe' | 'time' | 'budget';

/**
 * Why `req` may not be retried after a failure of `condition` (a RetryCondition bit), or undefined
 * if it may. A try that was never written (its connection failed first) reached no upstream:
 * sending it again is safe for any request and adds no load, so it needs neither idempotency nor
 * budget — only the policy's condition, a try left and time left.
 */
export function retryRefusal(req: ActiveRequest, condition: number, now: number, idempotent: boolean): RetryRefusal | undefined {
  const unsent = !req.sent;
  const policy = req.route?.retryPolicy;
  if (!policy || (policy.retryOnBits & condition) === 0) return 'policy';
  if (req.abandoned || req.meta === null || req.cluster === null) return 'policy';
  if (req.retries >= policy.numRetries) return 'limit';
  if (now >= req.deadline) return 'time';
  if (unsent) return undefined;
  if (!idempotent) return 'unsafe';
  if (!withinBudget(req)) return 'budget';
  return undefined;
}

/**
 * Whether the cluster's retry budget and max_retries leave room for `req` to be retried (a
 * request already being retried holds its place). Active requests are counted as they were
 * lately, not only now: when one endpoint of three dies, its requests fail together just as the
 * others complete, and at that moment they are most of what is active.
 */
export function withinBudget(req: ActiveRequest): boolean {
  if (req.retries > 0 || req.cluster === null) return req.cluster !== null;
  const stats = req.cluster.stats;
  const config = req.cluster.config;
  if (stats.retriesActive >= config.circuitBreakers.maxRetries) return false;
  const active = Math.max(stats.rqActive, stats.rqActivePeak, stats.rqActivePrevPeak);
  return stats.retriesActive + 1 <= Math.max(config.retryBudget.minConcurrency, (config.retryBudget.percent / 100) * active);
}

/** Full jitter over an exponential ceiling: base × 2^(n-1), at most max (Envoy's back-off). */
export function backOffMs(policy: CompiledRetryPolicy, retry: number): number {
  const ceiling = Math.min(policy.backOff.maxMs, policy.backOff.baseMs * 2 ** (retry - 1));
  return Math.random() * ceiling;
}
