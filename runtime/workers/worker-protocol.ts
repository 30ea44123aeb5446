// What the primary and its worker threads say to each other. Everything here crosses a
// MessagePort, so it is plain data (compiled Wasm modules included: V8 shares their code).

import type { ClusterConfig, Config, RouteConfiguration } from '../config/types';
import type { PluginSnapshotEntry } from '../plugin/plugin-registry';
import type { LogLevel } from '../core/logger';

/**
 * Everything a worker runs that can change after start: the primary's accepted plugins, every
 * listener's routes and every cluster. A worker takes a generation whole or not at all.
 */
export interface Generation {
  readonly id: number;
  readonly plugins: readonly PluginSnapshotEntry[];
  /** Per listener: its routes and the version they have in the primary (rebuilt only when it changes). */
  readonly routes: Readonly<Record<string, { readonly version: number; readonly config: RouteConfiguration }>>;
  readonly clusters: readonly ClusterConfig[];
}

export interface WorkerData {
  readonly index: number;
  /** The primary's config: listeners, static clusters, plugin limits (xds and admin stay with the primary). */
  readonly config: Config;
  /** Per listener name: the descriptor of the socket the primary bound, and its port (checked on the duplicate). */
  readonly fds: Readonly<Record<string, { readonly fd: number; readonly port: number }>>;
  readonly generation: Generation;
  /** Connection counts all workers share (see SharedConnectionCounts), by listener name. */
  readonly connectionCounts: { readonly buffer: SharedArrayBuffer; readonly listeners: readonly string[] };
  /** The least severe level the primary's logger writes. */
  readonly logLevel: LogLevel;
}

export type ToWorker =
  | { readonly type: 'prepare'; readonly generation: Generation }
  | { readonly type: 'commit'; readonly id: number }
  | { readonly type: 'abort'; readonly id: number }
  | { readonly type: 'query'; readonly id: number; readonly what: 'metrics' | 'status' }
  | { readonly type: 'stop' }
  /** Graceful drain: the worker answers `drained` once its connections are closed or its drain timed out. */
  | { readonly type: 'drain' };

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'drained' }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'prepared'; readonly id: number; readonly error?: string }
  | { readonly type: 'answer'; readonly id: number; readonly value: unknown }
  | { readonly type: 'log'; readonly level: LogLevel; readonly message: string; readonly fields: Record<string, unknown> };

/** What a worker reports of itself (`status` query). */
export interface WorkerStatus {
  readonly generation: number;
  readonly connections: number;
  readonly plugins: ReadonlyArray<{ readonly name: string; readonly kind: string; readonly generation: number; readonly current: boolean; readonly connections: number; readonly traps: number; readonly instance_recycles: number }>;
}
