// Interleaved rounds of redis-benchmark -t set,get -P 16 against redis-server directly and
// through several meltemi processes (one per variant of a config), with each proxy's CPU per
// request read from /proc: the shared measuring loop of the filters and telemetry benchmarks.

import type { MeltemiProcess } from '../helpers/meltemi-process';
import { cpuSeconds } from './proc-cpu';
import { median, redisBenchmark } from './redis-benchmark';

export interface VariantProxy { readonly key: string; readonly port: number; readonly proc: MeltemiProcess }
export interface VariantLoad { readonly rounds: number; readonly requests: number; readonly clients: number }
export interface VariantFigures { readonly direct: number; rps(key: string): number; cpu(key: string): number }

export async function measureVariants(redisPort: number, proxies: readonly VariantProxy[], load: VariantLoad): Promise<VariantFigures> {
  const samples = new Map<string, Array<{ rps: number; cpu: number }>>();
  const add = (key: string, s: { rps: number; cpu: number }) => (samples.get(key) ?? samples.set(key, []).get(key)!).push(s);
  for (const p of proxies) await redisBenchmark(p.port, 16, 100_000, load.clients); // warm-up
  for (let round = 1; round <= load.rounds; round++) {
    const direct = await redisBenchmark(redisPort, 16, load.requests, load.clients);
    add('direct', { rps: direct, cpu: 0 });
    process.stderr.write(`round ${round} direct: ${Math.round(direct)} req/s\n`);
    for (const p of proxies) {
      const cpu0 = cpuSeconds(p.proc.pid);
      const rps = await redisBenchmark(p.port, 16, load.requests, load.clients);
      // -t set,get: `requests` of each.
      const cpu = ((cpuSeconds(p.proc.pid) - cpu0) * 1e6) / (2 * load.requests);
      add(p.key, { rps, cpu });
      process.stderr.write(`round ${round} ${p.key}: ${Math.round(rps)} req/s, proxy CPU ${cpu.toFixed(2)} µs/req\n`);
    }
  }
  return {
    direct: median(samples.get('direct')!.map((s) => s.rps)),
    rps: (key) => median(samples.get(key)!.map((s) => s.rps)),
    cpu: (key) => median(samples.get(key)!.map((s) => s.cpu)),
  };
}
