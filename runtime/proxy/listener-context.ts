// What a downstream connection needs from its listener, gathered in one object so connections
// stay small and the listener can swap pieces (routes, plugin) without touching them.

import type { ListenerConfig } from '../config/types';
import type { Logger } from '../core/logger';
import type { CodecPlugin } from '../codec/codec-plugin';
import type { ClusterManager } from '../upstream/cluster';
import type { RouteTable } from '../router/route-table';
import type { ListenerStats, StatsStore } from '../core/stats';
import type { UpstreamPool } from '../upstream/upstream-pool';
import type { OverloadManager } from './overload-manager';
import type { FilterChain } from '../filter/filter-chain';
import type { ListenerTelemetry } from '../telemetry/telemetry';

export interface ListenerContext {
  /** Read when a connection opens: an LDS update applies to new connections. */
  config: ListenerConfig;
  /** The current codec generation: new connections take it, existing ones keep theirs. */
  plugin: CodecPlugin;
  readonly codecConfig: Buffer;
  /** Read at each request: a route update applies to the next request on existing connections. */
  routes: RouteTable;
  readonly clusters: ClusterManager;
  /** Shared upstream connections of the current generation. */
  pool: UpstreamPool;
  /** Called by a downstream connection when it closes (generation bookkeeping). */
  readonly released: (plugin: CodecPlugin, pool: UpstreamPool) => void;
  readonly stats: ListenerStats;
  /** The listener's filters, ending in its router: every request after the codec goes here. */
  chain: FilterChain;
  /** Global admission and memory state (request shedding is read per request). */
  readonly overload: OverloadManager;
  readonly store: StatsStore;
  readonly logger: Logger;
  /** Istio metrics, access logs, tracing and metadata exchange of this listener (null: none). */
  telemetry: ListenerTelemetry | null;
}
