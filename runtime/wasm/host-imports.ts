// The host functions of ABI 1.1 beyond log/abort (ABI-1.1.md §3): a clock, timers bound to a
// request, and metrics. Every plugin may import them; what they act on comes from the
// PluginHost the instance was created with (a filter's), and without one they are inert (a
// timer is refused, a metric is not defined). None calls back into the guest: a timer fires
// later, from the event loop, as its own call.

import type { WasmInstance } from './wasm-instance';

export interface PluginHost {
  /** Schedules meltemi_on_timer(root, req, id) after `delayMs`; returns the id, or 0 if refused. */
  setTimer(root: number, req: number, delayMs: number): number;
  /** Defines a metric (kind: MetricKind); returns its id, or 0 if refused. */
  defineMetric(kind: number, name: string, labelNames: string[]): number;
  /** Counter: adds `value`; gauge: sets it; histogram: observes it. */
  recordMetric(id: number, labelValues: string[], value: number): void;
}

/** Names a plugin may import (module.name), checked before instantiation. */
export const HOST_IMPORTS = ['meltemi.log', 'env.abort', 'meltemi.now_ms', 'meltemi.set_timer', 'meltemi.metric_define', 'meltemi.metric_record'];

/** Longest name or label list a plugin may pass. */
const MAX_TEXT = 4096;

export function hostImports(self: () => WasmInstance, host: PluginHost | undefined): Record<string, (...args: number[]) => number | void> {
  const started = performance.now();
  const text = (ptr: number, len: number): string | undefined => {
    const mem = self().u8;
    if (ptr < 0 || len < 0 || len > MAX_TEXT || ptr + len > mem.length) return undefined;
    return Buffer.from(mem.buffer, mem.byteOffset + ptr, len).toString('utf8');
  };
  const list = (s: string) => (s.length === 0 ? [] : s.split('\n'));
  return {
    now_ms: () => Math.floor(performance.now() - started) | 0,
    set_timer: (root: number, req: number, delayMs: number) => (host && delayMs >= 0 ? host.setTimer(root, req, delayMs) : 0),
    metric_define: (kind: number, namePtr: number, nameLen: number, labelsPtr: number, labelsLen: number) => {
      const name = text(namePtr, nameLen);
      const labels = text(labelsPtr, labelsLen);
      return host && name !== undefined && labels !== undefined ? host.defineMetric(kind, name, list(labels)) : 0;
    },
    metric_record: (id: number, valuesPtr: number, valuesLen: number, value: number) => {
      const values = text(valuesPtr, valuesLen);
      if (host && values !== undefined) host.recordMetric(id, list(values), value);
    },
  };
}
