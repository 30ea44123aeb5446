// Request mirroring (Aeraki's request_mirror_policies): a sampled share of a route's requests is
// also sent to a shadow cluster. The shadow is fire-and-forget: it goes on the listener's shared
// upstream connections after the real request, its response is dropped, its failure is counted
// and never reaches the client, and nothing waits for it. Requests bound to their connection's
// state (Redis SELECT, MULTI …) are not mirrored: on a shared connection they would change it
// for others.

import { FrameFlag, MessageType } from '../wasm/abi';
import { ActiveRequest, ResponseSink } from '../proxy/active-request';
import type { ClusterManager } from '../upstream/cluster';
import type { CompiledRoute } from './route-table';

/**
 * Bytes of shadows waiting for an answer, per shadow cluster, at most: past it new shadows are
 * dropped (counted), so a shadow that never answers cannot hold the frames of a flood.
 */
const MAX_SHADOW_BYTES_IN_FLIGHT = 64 * 1024 * 1024;

/** Drops what a shadow upstream answers; counts its failures. */
export const SHADOW_SINK: ResponseSink = {
  complete(req) {
    settle(req, false);
  },
  fail(req) {
    settle(req, true);
  },
};

function settle(req: ActiveRequest, failed: boolean): void {
  if (req.done) return;
  req.done = true;
  req.timerDue = Infinity;
  req.meta = null;
  const stats = req.cluster?.stats;
  if (!stats) return;
  stats.mirrorBytesActive -= req.shadowBytes;
  if (failed) stats.mirrorFailures++;
}

/** A shadow's deadline (the route timeout) passed: given up, and cancelled on its connection. */
export function shadowTimedOut(req: ActiveRequest): void {
  req.upstream?.cancel(req);
  settle(req, true);
}

/** Sends the shadows of `req` that its route's mirror policies draw. */
export function mirror(req: ActiveRequest, route: CompiledRoute, clusters: ClusterManager, now: number, mutation: Buffer | null): void {
  const mirrors = route.mirrors;
  const meta = req.meta;
  if (mirrors === null || meta === null || (meta.flags & FrameFlag.CONNECTION_SCOPED) !== 0) return;
  for (let i = 0; i < mirrors.length; i++) {
    const m = mirrors[i];
    if (m.percentage < 100 && Math.random() * 100 >= m.percentage) continue;
    const cluster = clusters.get(m.cluster);
    if (!cluster) continue;
    const ep = cluster.pick(now);
    const conn = ep && req.downstream.upstreams.pool.acquire(cluster, ep);
    if (!conn || cluster.stats.mirrorBytesActive + meta.frame.length > MAX_SHADOW_BYTES_IN_FLIGHT || conn.refusal(meta.frame.length) !== undefined) {
      cluster.stats.mirrorFailures++;
      continue;
    }
    const oneway = meta.messageType === MessageType.ONEWAY;
    const shadow = oneway ? null : new ActiveRequest(req.downstream, meta, now);
    if (shadow) {
      shadow.sink = SHADOW_SINK;
      shadow.cluster = cluster;
      shadow.tryId = 1;
      shadow.upstream = conn;
      // Swept with the real requests on the connection (router.ts); it must not wait forever.
      shadow.timerDue = now + (route.timeoutMs > 0 ? route.timeoutMs : 15_000);
    }
    try {
      conn.send(shadow, meta, mutation);
      cluster.stats.mirrored++;
      if (shadow) {
        shadow.shadowBytes = meta.frame.length;
        cluster.stats.mirrorBytesActive += meta.frame.length;
      }
    } catch {
      cluster.stats.mirrorFailures++;
    }
  }
}
