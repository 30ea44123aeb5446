// Metrics a plugin defines and updates (ABI 1.1 §3), exported by the proxy on /metrics as
// meltemi_plugin_metric_<plugin>_<name>. Define them in `configure` (a plugin-wide metric is defined
// once; defining it again returns the same one); label values are passed on each update.

import { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } from "./abi";

@external("meltemi", "metric_define")
declare function hostMetricDefine(kind: i32, namePtr: usize, nameLen: i32, labelsPtr: usize, labelsLen: i32): i32;
@external("meltemi", "metric_record")
declare function hostMetricRecord(id: i32, valuesPtr: usize, valuesLen: i32, value: i32): void;

export class Metric {
  constructor(public id: i32) {}

  /** Counter: adds `value`; gauge: sets it; histogram: observes it. `labelValues` in the order
   * of the label names given at definition. Does nothing when the host refused the metric. */
  record(labelValues: string[], value: i32): void {
    if (this.id == 0) return;
    const joined = String.UTF8.encode(labelValues.join("\n"));
    hostMetricRecord(this.id, changetype<usize>(joined), joined.byteLength, value);
  }
}

function define(kind: i32, name: string, labelNames: string[]): Metric {
  const n = String.UTF8.encode(name);
  const l = String.UTF8.encode(labelNames.join("\n"));
  return new Metric(hostMetricDefine(kind, changetype<usize>(n), n.byteLength, changetype<usize>(l), l.byteLength));
}

/** Names: [a-z_][a-z0-9_]*, at most 64 characters; at most 8 labels. */
export function defineCounter(name: string, labelNames: string[] = []): Metric { return define(METRIC_COUNTER, name, labelNames); }
export function defineGauge(name: string, labelNames: string[] = []): Metric { return define(METRIC_GAUGE, name, labelNames); }
export function defineHistogram(name: string, labelNames: string[] = []): Metric { return define(METRIC_HISTOGRAM, name, labelNames); }
