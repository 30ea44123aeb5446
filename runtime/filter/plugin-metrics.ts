// Metrics a plugin defines through meltemi.metric_define and updates through
// meltemi.metric_record (ABI-1.1.md §3), exported on /metrics as
// meltemi_plugin_metric_<plugin>_<name>.
// Everything a plugin passes is untrusted and may come from request bytes: names and labels are
// checked, and every limit (metrics per plugin, labels per metric, series per metric, label value
// length) is checked before anything is stored, so a plugin cannot grow the proxy's memory.

import { MetricKind } from '../wasm/abi';

const NAME = /^[a-z_][a-z0-9_]{0,63}$/;
const MAX_METRICS_PER_PLUGIN = 64;
const MAX_LABELS = 8;
const MAX_SERIES = 1000;
const MAX_LABEL_VALUE = 128;
/** Histogram bucket bounds: a value is whatever unit the plugin chose (µs, bytes …). */
export const PLUGIN_HISTOGRAM_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 1_000_000];

export interface PluginMetric {
  readonly id: number;
  readonly plugin: string;
  readonly fullName: string;
  readonly kind: number;
  readonly labelNames: readonly string[];
  /** Label values joined by \u0000 → value (counter, gauge) or bucket counts + sum (histogram). */
  readonly series: Map<string, number[]>;
  /** Updates refused because the metric had MAX_SERIES label sets already. */
  dropped: number;
}

export class PluginMetrics {
  private readonly byId = new Map<number, PluginMetric>();
  private readonly byName = new Map<string, PluginMetric>();
  private readonly perPlugin = new Map<string, number>();
  private nextId = 1;
  /** Called for each new metric (the admin registers it for scraping). */
  onDefine: ((m: PluginMetric) => void) | undefined;

  /** The id of the metric (the same on a repeated definition), or 0 when refused. */
  define(plugin: string, kind: number, name: string, labelNames: string[]): number {
    if (kind !== MetricKind.COUNTER && kind !== MetricKind.GAUGE && kind !== MetricKind.HISTOGRAM) return 0;
    if (!NAME.test(name) || labelNames.length > MAX_LABELS || labelNames.some((l) => !NAME.test(l) || l === 'le')) return 0;
    // Its own prefix, so no plugin name can reach a built-in metric (meltemi_plugin_traps_total).
    const fullName = `meltemi_plugin_metric_${plugin.replace(/[^a-z0-9_]/g, '_')}_${name}`;
    const existing = this.byName.get(fullName);
    if (existing) {
      // "a.b" and "a_b" map to one prefix: a metric belongs to the plugin that defined it.
      const same = existing.plugin === plugin && existing.kind === kind && existing.labelNames.join() === labelNames.join();
      return same ? existing.id : 0;
    }
    const count = this.perPlugin.get(plugin) ?? 0;
    if (count >= MAX_METRICS_PER_PLUGIN) return 0;
    this.perPlugin.set(plugin, count + 1);
    const m: PluginMetric = { id: this.nextId++, plugin, fullName, kind, labelNames: [...labelNames], series: new Map(), dropped: 0 };
    this.byId.set(m.id, m);
    this.byName.set(fullName, m);
    try {
      this.onDefine?.(m);
    } catch {
      // Registration refused (a name clash the registry knows of): the plugin gets no metric.
      this.byId.delete(m.id);
      this.byName.delete(fullName);
      return 0;
    }
    return m.id;
  }

  record(id: number, labelValues: string[], value: number): void {
    const m = this.byId.get(id);
    if (!m || labelValues.length !== m.labelNames.length || labelValues.some((v) => v.length > MAX_LABEL_VALUE)) return;
    const key = labelValues.join('\u0000');
    let s = m.series.get(key);
    if (!s) {
      if (m.series.size >= MAX_SERIES) {
        m.dropped++;
        return;
      }
      s = m.kind === MetricKind.HISTOGRAM ? new Array<number>(PLUGIN_HISTOGRAM_BUCKETS.length + 2).fill(0) : [0];
      m.series.set(key, s);
    }
    if (m.kind === MetricKind.COUNTER) {
      if (value > 0) s[0] += value;
    } else if (m.kind === MetricKind.GAUGE) {
      s[0] = value;
    } else {
      let b = 0;
      while (b < PLUGIN_HISTOGRAM_BUCKETS.length && value > PLUGIN_HISTOGRAM_BUCKETS[b]) b++;
      s[b]++;
      s[PLUGIN_HISTOGRAM_BUCKETS.length + 1] += value;
    }
  }

  all(): PluginMetric[] {
    return [...this.byId.values()];
  }
}
