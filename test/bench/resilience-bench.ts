// What timeouts and retries cost when nothing fails: redis-benchmark -t set,get -c 50 -P 16
// through two meltemi processes, one whose route has no timeout and no retry policy, one with a
// 15 s timeout, a 1 s per-try timeout and a retry policy (nothing is ever retried); interleaved
// rounds, medians, proxy CPU per request from /proc, direct in the same rounds.

import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { cpuSeconds } from './proc-cpu';
import { median, redisBenchmark } from './redis-benchmark';


export interface ResilienceBenchOptions { rounds: number; requests: number; clients: number }

const VARIANTS = [
  { key: 'plain', label: 'no timeout, no retries', action: 'timeout: 0s' },
  { key: 'resilient', label: 'timeout 15s, per-try 1s, retries', action: 'timeout: 15s, retry_policy: { retry_on: "reset,connect-failure,timeout", num_retries: 2, per_try_timeout: 1s }' },
] as const;



export async function resilienceBench(opts: ResilienceBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  const proxies: Array<{ key: string; port: number; proc: MeltemiProcess }> = [];
  for (const v of VARIANTS) {
    const port = await freePort();
    const proc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: ${port}, protocol: redis, route_config: { routes: [ { route: { cluster: redis, ${v.action} } } ] } }
clusters:
  - { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
`, port, { args: ['--workers', '1'] });
    proxies.push({ key: v.key, port, proc });
  }
  const samples = new Map<string, Array<{ rps: number; cpu: number }>>();
  const direct: number[] = [];
  try {
    for (const p of proxies) await redisBenchmark(p.port, 16, 100_000, opts.clients); // warm-up
    for (let round = 1; round <= opts.rounds; round++) {
      direct.push(await redisBenchmark(redis.port, 16, opts.requests, opts.clients));
      for (const p of proxies) {
        const cpu0 = cpuSeconds(p.proc.pid);
        const rps = await redisBenchmark(p.port, 16, opts.requests, opts.clients);
        const cpu = ((cpuSeconds(p.proc.pid) - cpu0) * 1e6) / (2 * opts.requests);
        (samples.get(p.key) ?? samples.set(p.key, []).get(p.key)!).push({ rps, cpu });
        process.stderr.write(`round ${round} ${p.key}: ${Math.round(rps)} req/s, proxy CPU ${cpu.toFixed(2)} µs/req\n`);
      }
    }
  } finally {
    for (const p of proxies) await p.proc.stop();
    await redis.stop();
  }
  const d = median(direct);
  const result: Record<string, unknown> = { benchmark: 'resilience', rounds: opts.rounds, clients: opts.clients, requests: opts.requests, direct_rps: Math.round(d) };
  const rows = ['| route | req/s (median) | ratio to direct | proxy CPU µs/req |', '|---|---|---|---|'];
  for (const v of VARIANTS) {
    const list = samples.get(v.key)!;
    const rps = median(list.map((s) => s.rps));
    const cpu = median(list.map((s) => s.cpu));
    result[`${v.key}_rps`] = Math.round(rps);
    result[`${v.key}_cpu_us_per_req`] = Number(cpu.toFixed(3));
    rows.push(`| ${v.label} | ${Math.round(rps)} | ${(rps / d).toFixed(2)} | ${cpu.toFixed(2)} |`);
  }
  const added = (result.resilient_cpu_us_per_req as number) - (result.plain_cpu_us_per_req as number);
  result.added_cpu_us_per_req = Number(added.toFixed(3));
  rows.push(`\nTimeouts and retries add ${added.toFixed(2)} µs of proxy CPU per request.`);
  process.stdout.write(rows.join('\n') + '\n');
  return result;
}
