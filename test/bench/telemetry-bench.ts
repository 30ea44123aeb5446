// redis-benchmark -t set,get -c 50 -P 16 through meltemi with telemetry added feature by
// feature — none, Istio's standard metrics, + an access log to a file (Envoy's default text
// format), + tracing at 1 % sampling exported over OTLP/gRPC to a real receiver — against
// redis-server directly in the same rounds. Each feature's cost is its proxy CPU per request
// over the variant before it.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { OtlpReceiver } from '../helpers/otlp-receiver';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { measureVariants, type VariantFigures } from './redis-variants';

export interface TelemetryBenchOptions { rounds: number; requests: number; clients: number }

const VARIANTS = [
  { key: 'none', label: 'no telemetry (istio_metrics: false)', istio: false, log: false, trace: false },
  { key: 'istio', label: 'Istio metrics', istio: true, log: false, trace: false },
  { key: 'istio_log', label: '+ access log to a file', istio: true, log: true, trace: false },
  { key: 'all', label: '+ tracing at 1 %', istio: true, log: true, trace: true },
] as const;

export async function telemetryBench(opts: TelemetryBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  const otlp = await OtlpReceiver.start();
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-bench-telemetry-'));
  const proxies: Array<{ key: string; port: number; proc: MeltemiProcess }> = [];
  let figures: VariantFigures;
  try {
    for (const v of VARIANTS) {
      const port = await freePort();
      const telemetry = [
        `  istio_metrics: ${v.istio}`,
        ...(v.log ? [`  access_log: [ { path: ${JSON.stringify(join(dir, `${v.key}.log`))} } ]`] : []),
        ...(v.trace ? [`  tracing: { sampling: 1, otlp: { address: 127.0.0.1, port: ${otlp.port} } }`] : []),
      ].join('\n');
      const proc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
telemetry:
${telemetry}
listeners:
  - { name: redis, port: ${port}, protocol: redis, route_config: { routes: [ { route: { cluster: "outbound|6379||redis.bench.svc.cluster.local" } } ] } }
clusters:
  - { name: "outbound|6379||redis.bench.svc.cluster.local", endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
`, port, { args: ['--workers', '1'] });
      proxies.push({ key: v.key, port, proc });
    }
    figures = await measureVariants(redis.port, proxies, opts);
  } finally {
    for (const p of proxies) await p.proc.stop();
    await redis.stop();
    await otlp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const result: Record<string, unknown> = { benchmark: 'telemetry', rounds: opts.rounds, clients: opts.clients, requests: opts.requests, direct_rps: Math.round(figures.direct), spans_received: otlp.spans.length };
  const rows = ['| telemetry | req/s (median) | ratio to direct | proxy CPU µs/req | this feature adds |', '|---|---|---|---|---|'];
  let previous: number | undefined;
  for (const v of VARIANTS) {
    const rps = figures.rps(v.key);
    const cpu = figures.cpu(v.key);
    result[`${v.key}_rps`] = Math.round(rps);
    result[`${v.key}_cpu_us_per_req`] = Number(cpu.toFixed(3));
    rows.push(`| ${v.label} | ${Math.round(rps)} | ${(rps / figures.direct).toFixed(2)} | ${cpu.toFixed(2)} | ${previous === undefined ? '–' : `${cpu - previous >= 0 ? '+' : ''}${(cpu - previous).toFixed(2)} µs`} |`);
    previous = cpu;
  }
  const total = figures.cpu('all') - figures.cpu('none');
  result.all_three_cpu_us_per_req = Number(total.toFixed(3));
  rows.push(`| all three over none | | | | ${total >= 0 ? '+' : ''}${total.toFixed(2)} µs (target ≤ 0.5) |`);
  process.stdout.write(rows.join('\n') + '\n');
  return result;
}
