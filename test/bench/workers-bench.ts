// Worker threads against `node:cluster` processes, both with 2 workers, beside one worker: Redis
// throughput (-c 50, -P 1 and -P 16) through each, interleaved rounds, medians, CPU per request
// summed over every process, and idle RSS (every process, after the plugin-accepting worker ended).

import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { cpuSeconds } from './proc-cpu';
import { median, redisBenchmark } from './redis-benchmark';
import { rssMb } from './memory-bench';
import type { RedisBenchOptions } from './redis-bench';


const configFor = (port: number, redisPort: number) => `
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: ${port}, protocol: redis, route_config: { routes: [ { route: { cluster: redis } } ] } }
clusters:
  - { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redisPort} } ] }
`;

interface Target { name: string; port: number; pids: number[]; stop: () => Promise<unknown> }

async function clusterTarget(name: string, policy: 'rr' | 'none', redisPort: number): Promise<Target> {
  const port = await freePort();
  const file = join(mkdtempSync(join(tmpdir(), 'meltemi-cluster-')), 'meltemi.yaml');
  writeFileSync(file, configFor(port, redisPort));
  const proc: ChildProcess = spawn(process.execPath, [join(__dirname, 'cluster-launcher.js'), file, '2', policy], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pids = await new Promise<number[]>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /pids ([\d,]+)/.exec(out);
      if (m) resolve(m[1].split(',').map(Number));
    });
    proc.once('exit', (code) => reject(new Error(`cluster launcher exited with ${code}`)));
  });
  return {
    name, port, pids: [proc.pid!, ...pids],
    stop: () => new Promise((resolve) => { proc.once('exit', resolve); proc.kill('SIGTERM'); }),
  };
}

async function threadsTarget(name: string, workers: number, redisPort: number): Promise<Target> {
  const port = await freePort();
  const proc = await MeltemiProcess.start(configFor(port, redisPort), port, { args: ['--workers', String(workers)] });
  return { name, port, pids: [proc.pid], stop: () => proc.stop() };
}

/** The same load as the redis benchmark's. */
export async function workersBench(opts: RedisBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  const targets: Target[] = [];
  try {
    targets.push(await threadsTarget('threads_1', 1, redis.port));
    targets.push(await threadsTarget('threads_2', 2, redis.port));
    targets.push(await clusterTarget('cluster_rr_2', 'rr', redis.port));
    targets.push(await clusterTarget('cluster_none_2', 'none', redis.port));
    // Idle RSS once the plugin-accepting worker threads ended (2 s idle).
    await new Promise((r) => setTimeout(r, 4000));
    const result: Record<string, unknown> = { benchmark: 'workers', rounds: opts.rounds, clients: opts.clients };
    for (const t of targets) result[`${t.name}_idle_rss_mb`] = Number(t.pids.reduce((n, pid) => n + rssMb(pid), 0).toFixed(1));
    for (const t of targets) await redisBenchmark(t.port, 16, 100_000, opts.clients);
    const samples: Record<string, Array<{ rps: number; cpu: number }>> = {};
    const direct: Record<string, number[]> = {};
    for (let round = 1; round <= opts.rounds; round++) {
      for (const [mode, pipeline, requests] of [['P1', 1, opts.requestsP1], ['P16', 16, opts.requestsP16]] as const) {
        (direct[mode] ??= []).push(await redisBenchmark(redis.port, pipeline, requests, opts.clients));
        for (const t of targets) {
          const cpu0 = t.pids.reduce((n, pid) => n + cpuSeconds(pid), 0);
          const rps = await redisBenchmark(t.port, pipeline, requests, opts.clients);
          const cpu = ((t.pids.reduce((n, pid) => n + cpuSeconds(pid), 0) - cpu0) * 1e6) / (2 * requests);
          (samples[`${t.name}.${mode}`] ??= []).push({ rps, cpu });
          process.stderr.write(`round ${round} ${mode} ${t.name}: ${Math.round(rps)} req/s, proxy CPU ${cpu.toFixed(2)} µs/req\n`);
        }
      }
    }
    const rows = ['| target | idle RSS MB | mode | req/s (median) | ratio to direct | proxy CPU µs/req |', '|---|---|---|---|---|---|'];
    for (const mode of ['P1', 'P16'] as const) {
      const d = median(direct[mode]);
      result[`direct_${mode}_rps`] = Math.round(d);
      for (const t of targets) {
        const list = samples[`${t.name}.${mode}`];
        const rps = median(list.map((s) => s.rps));
        const cpu = median(list.map((s) => s.cpu));
        result[`${t.name}_${mode}_ratio`] = Number((rps / d).toFixed(3));
        result[`${t.name}_${mode}_cpu_us_per_req`] = Number(cpu.toFixed(2));
        rows.push(`| ${t.name} | ${result[`${t.name}_idle_rss_mb`]} | -c ${opts.clients} -${mode} | ${Math.round(rps)} | ${(rps / d).toFixed(2)} | ${cpu.toFixed(2)} |`);
      }
    }
    process.stdout.write(rows.join('\n') + '\n');
    return result;
  } finally {
    for (const t of targets) await t.stop();
    await redis.stop();
  }
}
