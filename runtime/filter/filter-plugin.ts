// One generation of a filter plugin: its module, the instance every use of it in this thread
// shares (so plugin-wide state — a token bucket — spans connections and listeners), and the roots
// (configured uses) living in that instance. A trap replaces the instance and configures every
// root again in the new one.

import type { Logger } from '../core/logger';
import type { CompiledPlugin } from '../plugin/plugin-loader';
import type { PluginHost } from '../wasm/host-imports';
import { FilterInstance } from './filter-instance';
import type { PluginMetrics } from './plugin-metrics';

/** What a root (a WasmFilter) gets from the host functions its plugin calls. */
export interface RootHost {
  setTimer(req: number, delayMs: number): number;
  /** The instance was replaced: configure the root again. */
  reconfigure(instance: FilterInstance): void;
}

export class FilterPlugin implements PluginHost {
  instance: FilterInstance;
  traps = 0;
  recycles = 0;
  reloads = 0;
  removed = false;
  private readonly roots = new Map<number, RootHost>();
  private nextRoot = 1;

  constructor(readonly compiled: CompiledPlugin, private readonly logger: Logger, readonly generation = 1,
    private readonly maxMemoryBytes?: number, private readonly fuelPerCall = 0, private readonly metrics?: PluginMetrics) {
    this.instance = this.instantiate();
  }

  get name(): string {
    return this.compiled.descriptor.name;
  }

  get descriptor() {
    return this.compiled.descriptor;
  }

  private instantiate(): FilterInstance {
    return new FilterInstance(this.compiled.module, this.compiled.file, this.logger, this.maxMemoryBytes, this.fuelPerCall, this);
  }

  /** A root id for a new configured use; `host` answers its timers and metrics. */
  addRoot(host: RootHost): number {
    const root = this.nextRoot++;
    this.roots.set(root, host);
    return root;
  }

  removeRoot(root: number): void {
    this.roots.delete(root);
    try {
      this.instance.rootFree(root);
    } catch {
      // A trap while freeing poisons the instance; the next call replaces it.
    }
  }

  /** The current instance, replaced first if a call trapped. */
  current(): FilterInstance {
    if (!this.instance.poisoned) return this.instance;
    this.traps++;
    this.recycles++;
    this.instance = this.instantiate();
    for (const [root, host] of [...this.roots]) {
      try {
        host.reconfigure(this.instance);
      } catch (err) {
        // A root that cannot be configured again is dropped: its calls fail (unknown root) by
        // their filter's failure policy, and other roots keep working.
        this.roots.delete(root);
        this.logger.log('error', `filter ${this.name}: root ${root} could not be configured again after a trap: ${(err as Error).message}`);
        if (this.instance.poisoned) this.instance = this.instantiate();
      }
    }
    return this.instance;
  }

  setTimer(root: number, req: number, delayMs: number): number {
    return this.roots.get(root)?.setTimer(req, delayMs) ?? 0;
  }

  defineMetric(kind: number, name: string, labelNames: string[]): number {
    return this.metrics ? this.metrics.define(this.name, kind, name, labelNames) : 0;
  }

  recordMetric(id: number, labelValues: string[], value: number): void {
    this.metrics?.record(id, labelValues, value);
  }
}
