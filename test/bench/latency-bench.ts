// Latency meltemi adds at fixed request rates (open loop, see open-loop.ts): PINGs at 5 000 and
// 20 000 a second for a few seconds, to redis-server directly and through meltemi with a route
// timeout and a retry policy, one after the other in the same run; p50, p99, p99.9 and what
// meltemi adds to each.

import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { LatencyResult, openLoop } from './open-loop';

export interface LatencyBenchOptions { rates: number[]; durationMs: number }

export async function latencyBench(opts: LatencyBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  const port = await freePort();
  const proc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: ${port}, protocol: redis, route_config: { routes: [ { route: { cluster: redis, timeout: 15s, retry_policy: { retry_on: "reset,connect-failure,timeout", num_retries: 2, per_try_timeout: 1s } } } ] } }
clusters:
  - { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
`, port);
  const result: Record<string, unknown> = { benchmark: 'latency', duration_ms: opts.durationMs };
  const rows = ['| rate (req/s) | target | p50 µs | p99 µs | p99.9 µs | answered |', '|---|---|---|---|---|---|'];
  try {
    await openLoop(port, 5000, 1000); // warm-up
    for (const rate of opts.rates) {
      const runs: Array<[string, LatencyResult]> = [['direct', await openLoop(redis.port, rate, opts.durationMs)], ['meltemi', await openLoop(port, rate, opts.durationMs)]];
      for (const [target, r] of runs) {
        rows.push(`| ${rate} | ${target} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.p999.toFixed(0)} | ${r.answered}/${r.sent} |`);
        result[`${target}_${rate}`] = { p50_us: Math.round(r.p50), p99_us: Math.round(r.p99), p999_us: Math.round(r.p999), answered: r.answered, sent: r.sent };
      }
      const [d, m] = [runs[0][1], runs[1][1]];
      rows.push(`| ${rate} | **added** | ${(m.p50 - d.p50).toFixed(0)} | ${(m.p99 - d.p99).toFixed(0)} | ${(m.p999 - d.p999).toFixed(0)} | |`);
      result[`added_${rate}`] = { p50_us: Math.round(m.p50 - d.p50), p99_us: Math.round(m.p99 - d.p99), p999_us: Math.round(m.p999 - d.p999) };
    }
  } finally {
    await proc.stop();
    await redis.stop();
  }
  process.stdout.write(rows.join('\n') + '\n');
  return result;
}
