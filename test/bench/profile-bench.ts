// Where a request's proxy CPU goes: meltemi runs under V8's sampling profiler (--cpu-prof) while
// redis-benchmark drives -P 16 SET/GET through it; the profile's samples are summed by what ran —
// the codec's Wasm, meltemi's JavaScript, Node's own JavaScript (streams, net), native code
// entered from JS (socket reads and writes: the syscalls), garbage collection — and the
// functions with the most self time are listed. Total CPU from /proc divides it per request.

import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { cpuSeconds } from './proc-cpu';
import { redisBenchmark } from './redis-benchmark';

export interface ProfileBenchOptions { requests: number; clients: number; pipeline: number }

interface CpuProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: CpuProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** The bucket a profile node's self time belongs to. */
export function categoryOf(frame: CpuProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (url.startsWith('wasm://')) return 'Wasm (codec and filters)';
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'V8 and native, not attributed';
  if (url.includes('/build/runtime/')) return 'meltemi JavaScript';
  if (url.startsWith('node:')) return 'Node JavaScript (net, streams, timers)';
  if (url === '') return 'native called from JS (socket I/O syscalls, Buffer copies)';
  return 'other JavaScript';
}

export function summarize(profile: CpuProfile): { byCategory: Map<string, number>; byFunction: Map<string, number>; totalUs: number } {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let totalUs = 0;
  for (const [id, us] of self) {
    const frame = nodes.get(id)!.callFrame;
    const category = categoryOf(frame);
    if (category === 'idle') continue;
    totalUs += us;
    byCategory.set(category, (byCategory.get(category) ?? 0) + us);
    const file = frame.url.replace(/^.*\/(build|node_modules)\//, '').replace(/^wasm:\/\/wasm\/.*/, 'wasm');
    const name = `${frame.functionName || '(anonymous)'} ${file}`.trim();
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  }
  return { byCategory, byFunction, totalUs };
}

export async function profileBench(opts: ProfileBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-profile-'));
  const proc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: ${port}, protocol: redis, route_config: { routes: [ { route: { cluster: redis } } ] } }
clusters:
  - { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
`, port, { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir], args: ['--workers', '1'] });
  let cpuUsPerRequest: number;
  try {
    await redisBenchmark(port, opts.pipeline, 100_000, opts.clients); // warm-up: tier-up before the profile counts
    const cpu0 = cpuSeconds(proc.pid);
    await redisBenchmark(port, opts.pipeline, opts.requests, opts.clients);
    cpuUsPerRequest = ((cpuSeconds(proc.pid) - cpu0) * 1e6) / (2 * opts.requests);
  } finally {
    await proc.stop();
    await redis.stop();
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no profile written to ${dir}`);
  const { byCategory, byFunction, totalUs } = summarize(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile);
  const share = (us: number) => us / totalUs;
  const rows = [`| where (self time, ${opts.pipeline > 1 ? `-P ${opts.pipeline}` : '-P 1'}) | share | µs per request |`, '|---|---|---|'];
  const result: Record<string, unknown> = { benchmark: 'profile', cpu_us_per_request: Number(cpuUsPerRequest.toFixed(2)), profile: join(dir, file) };
  for (const [category, us] of [...byCategory].sort((a, b) => b[1] - a[1])) {
    rows.push(`| ${category} | ${(share(us) * 100).toFixed(1)}% | ${(share(us) * cpuUsPerRequest).toFixed(2)} |`);
    result[category] = Number((share(us) * cpuUsPerRequest).toFixed(3));
  }
  rows.push('', '| function (top 15 by self time) | share |', '|---|---|');
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 15)) rows.push(`| \`${name}\` | ${(share(us) * 100).toFixed(1)}% |`);
  process.stdout.write(`proxy CPU ${cpuUsPerRequest.toFixed(2)} µs/request over the measured run; the profile covers warm-up too\n${rows.join('\n')}\n`);
  return result;
}
