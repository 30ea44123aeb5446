// Latency meltemi adds at fixed request rates (open loop, see open-loop.ts; 50 connections):
// Redis PINGs at 5 000 and 20 000 a second and Thrift calls at 2 000 and 5 000 (the Node Thrift
// server saturates near 10 000) for a few seconds each, directly, through
// meltemi (a route timeout and a retry policy configured) and, for Redis, through HAProxy in
// mode tcp when installed; one after the other in the same run; p50, p99, p99.9 and what each
// proxy adds to each.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { services } from '../helpers/thrift-peers';
import { LatencyResult, openLoop, REDIS_PING, thriftCall, type OpenLoopProtocol } from './open-loop';
import { startHaproxy } from './reference-proxies';

export interface LatencyBenchOptions { redisRates: number[]; thriftRates: number[]; durationMs: number }

const RETRYING = 'timeout: 15s, retry_policy: { retry_on: "reset,connect-failure,timeout", num_retries: 2, per_try_timeout: 1s }';

export async function latencyBench(opts: LatencyBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  services(); // generate the Thrift code before the server process needs it
  const thrift: ChildProcess = spawn(process.execPath, [join(__dirname, 'thrift-server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const thriftPort = await new Promise<number>((resolve) => thrift.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
  const [redisProxyPort, thriftProxyPort] = [await freePort(), await freePort()];
  const proc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: ${redisProxyPort}, protocol: redis, route_config: { routes: [ { route: { cluster: redis, ${RETRYING} } } ] } }
  - { name: thrift, port: ${thriftProxyPort}, protocol: thrift, route_config: { routes: [ { route: { cluster: thrift, ${RETRYING} } } ] } }
clusters:
  - { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
  - { name: thrift, endpoints: [ { address: 127.0.0.1, port: ${thriftPort} } ] }
`, redisProxyPort, { args: ['--workers', '1'] });
  const haproxy = await startHaproxy(redis.port).catch(() => undefined);
  const suites: Array<{ protocol: string; load: OpenLoopProtocol; rates: number[]; targets: Array<[string, number]> }> = [
    { protocol: 'redis', load: REDIS_PING, rates: opts.redisRates, targets: [['direct', redis.port], ['meltemi', redisProxyPort], ...(haproxy ? [['haproxy', haproxy.port] as [string, number]] : [])] },
    { protocol: 'thrift', load: thriftCall('who'), rates: opts.thriftRates, targets: [['direct', thriftPort], ['meltemi', thriftProxyPort]] },
  ];
  const result: Record<string, unknown> = { benchmark: 'latency', duration_ms: opts.durationMs, connections: 50 };
  const rows = ['| protocol | rate (req/s) | target | p50 µs | p99 µs | p99.9 µs | answered |', '|---|---|---|---|---|---|---|'];
  try {
    for (const suite of suites) {
      for (const [, port] of suite.targets) await openLoop(port, 5000, 1000, suite.load); // warm-up
      for (const rate of suite.rates) {
        const runs: Array<[string, LatencyResult]> = [];
        for (const [target, port] of suite.targets) runs.push([target, await openLoop(port, rate, opts.durationMs, suite.load)]);
        const d = runs[0][1];
        for (const [target, r] of runs) {
          rows.push(`| ${suite.protocol} | ${rate} | ${target} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.p999.toFixed(0)} | ${r.answered}/${r.sent} |`);
          result[`${suite.protocol}_${target}_${rate}`] = { p50_us: Math.round(r.p50), p99_us: Math.round(r.p99), p999_us: Math.round(r.p999), answered: r.answered, sent: r.sent };
          if (target === 'direct') continue;
          rows.push(`| ${suite.protocol} | ${rate} | **${target} adds** | ${(r.p50 - d.p50).toFixed(0)} | ${(r.p99 - d.p99).toFixed(0)} | ${(r.p999 - d.p999).toFixed(0)} | |`);
          result[`${suite.protocol}_${target}_added_${rate}`] = { p50_us: Math.round(r.p50 - d.p50), p99_us: Math.round(r.p99 - d.p99), p999_us: Math.round(r.p999 - d.p999) };
        }
      }
    }
  } finally {
    await haproxy?.stop();
    await proc.stop();
    thrift.kill('SIGTERM');
    await redis.stop();
  }
  process.stdout.write(rows.join('\n') + '\n');
  return result;
}
