// A worker thread of a multi-worker proxy: its own plugin instances, pools, routes and
// connections, listening on its duplicates of the primary's sockets. It receives no xDS and
// watches no directory: the primary hands it generations, and it takes each whole or not at all.

import { captureListenerNames } from '../sidecar/capture-listener';
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config/types';
import { PortLogger } from './port-logger';
import { MetricList, registerMeltemiMetrics } from '../admin/metric-list';
import { registerIstioMetrics } from '../telemetry/istio-metrics-export';
import { RouteTable } from '../router/route-table';
import { Meltemi } from '../server';
import type { Listener } from '../proxy/listener';
import { SharedConnectionCounts } from './shared-connection-counts';
import { duplicateListenSockets, listenOnHandle } from './shared-listen-socket';
import type { FromWorker, Generation, ToWorker, WorkerData, WorkerStatus } from './worker-protocol';

const data = workerData as WorkerData;
const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);

class GenerationApplier {
  current = 0;
  private readonly routeVersions = new Map<string, number>();
  private readonly clusterJson = new Map<string, string>();
  private pending: { id: number; generation: Generation; routes: Map<Listener, RouteTable> } | undefined;

  constructor(private readonly proxy: Meltemi) {
    for (const c of proxy.clusters.all()) this.clusterJson.set(c.name, JSON.stringify(c.config));
  }

  /** Builds what `generation` needs and keeps it; returns why it cannot, if it cannot. */
  prepare(generation: Generation): string | undefined {
    try {
      this.proxy.plugins.check(generation.plugins);
      const routes = new Map<Listener, RouteTable>();
      for (const [name, r] of Object.entries(generation.routes)) {
        const l = this.proxy.listener(name);
        if (l && this.routeVersions.get(name) !== r.version) routes.set(l, new RouteTable(r.config, name, this.proxy.stats));
      }
      this.pending = { id: generation.id, generation, routes };
      return undefined;
    } catch (err) {
      this.pending = undefined;
      return (err as Error).message;
    }
  }

  commit(id: number): void {
    const p = this.pending;
    if (!p || p.id !== id) return;
    this.pending = undefined;
    this.proxy.plugins.adopt(p.generation.plugins);
    for (const [l, table] of p.routes) {
      l.context.routes = table;
      this.routeVersions.set(l.config.name, p.generation.routes[l.config.name].version);
    }
    const names = new Set<string>();
    for (const c of p.generation.clusters) {
      names.add(c.name);
      const json = JSON.stringify(c);
      if (this.clusterJson.get(c.name) === json) continue;
      this.clusterJson.set(c.name, json);
      this.proxy.clusters.upsert(c);
    }
    this.proxy.clusters.retainDynamic(names);
    for (const name of [...this.clusterJson.keys()]) if (!this.proxy.clusters.get(name)) this.clusterJson.delete(name);
    this.current = id;
  }

  abort(id: number): void {
    if (this.pending?.id === id) this.pending = undefined;
  }
}

function status(proxy: Meltemi, generation: number): WorkerStatus {
  const current = new Set<unknown>([...proxy.plugins.codecs(), ...proxy.plugins.filters()]);
  return {
    generation,
    connections: proxy.listeners.reduce((n, l) => n + l.activeConnections, 0),
    plugins: [...proxy.plugins.generations(), ...proxy.plugins.filters()].map((p) => ({
      name: p.name, kind: p.descriptor.kind, generation: p.generation, current: current.has(p),
      connections: 'connections' in p ? p.connections : 0, traps: p.traps, instance_recycles: p.recycles,
    })),
  };
}

async function main(): Promise<void> {
  const config: Config = { ...data.config, xds: undefined, admin: undefined, plugins: { ...data.config.plugins, watch: false } };
  const logger = new PortLogger(send, data.logLevel);
  // Listeners reached through capture only have no socket; the capture listeners have theirs.
  const names = [...config.listeners.filter((l) => l.bindToPort !== false).map((l) => l.name), ...captureListenerNames(config.capture)];
  const handles = await duplicateListenSockets(names.map((n) => data.fds[n].fd), names.map((n) => data.fds[n].port));
  const byName = new Map(names.map((n, i) => [n, handles[i]]));
  let applier: GenerationApplier | undefined;
  const proxy: Meltemi = new Meltemi(config, {
    logger,
    binder: async (server, l) => {
      const handle = byName.get(l.name);
      if (!handle) throw new Error(`listener ${l.name} has no shared socket`);
      await listenOnHandle(server, handle, `listener ${l.name}`, `${l.address}:${l.port}`);
      return undefined;
    },
    initialPlugins: (registry) => registry.adopt(data.generation.plugins),
    beforeListen: () => {
      applier = new GenerationApplier(proxy);
      const error = applier.prepare(data.generation);
      if (error !== undefined) throw new Error(`cannot take generation ${data.generation.id}: ${error}`);
      applier.commit(data.generation.id);
    },
  });
  proxy.overload.shared = new SharedConnectionCounts(data.connectionCounts.buffer, data.connectionCounts.listeners, data.index);
  await proxy.start();
  const metrics = registerMeltemiMetrics(new MetricList(), proxy.stats, proxy.plugins, proxy.overload, { worker: true });
  registerIstioMetrics(metrics, proxy.telemetry);
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'prepare': {
        const error = applier!.prepare(m.generation);
        send({ type: 'prepared', id: m.generation.id, ...(error === undefined ? {} : { error }) });
        return;
      }
      case 'commit':
        applier!.commit(m.id);
        return;
      case 'abort':
        applier!.abort(m.id);
        return;
      case 'query':
        if (m.what === 'status') send({ type: 'answer', id: m.id, value: status(proxy, applier!.current) });
        else void metrics.getMetricsAsJSON().then((value) => send({ type: 'answer', id: m.id, value }));
        return;
      case 'drain':
        void proxy.drain().done.then(() => send({ type: 'drained' }));
        return;
      case 'stop':
        void proxy.stop().then(() => process.exit(0));
        return;
    }
  });
  send({ type: 'ready' });
}

main().catch((err: Error) => {
  send({ type: 'failed', message: err.message });
  process.exit(1);
});
