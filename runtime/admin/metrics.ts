// The admin port's Prometheus registry: meltemi's metrics (metric-list.ts) and the process's.

import { Registry, collectDefaultMetrics } from 'prom-client';
import type { StatsStore } from '../core/stats';
import type { PluginRegistry } from '../plugin/plugin-registry';
import type { OverloadManager } from '../proxy/overload-manager';
import { registerMeltemiMetrics } from './metric-list';
import { registerIstioMetrics } from '../telemetry/istio-metrics-export';
import type { Telemetry } from '../telemetry/telemetry';

export function createMetricsRegistry(stats: StatsStore, plugins: PluginRegistry, overload: OverloadManager, telemetry: Telemetry): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'meltemi_process_' });
  registerIstioMetrics(registry, telemetry);
  return registerMeltemiMetrics(registry, stats, plugins, overload);
}
