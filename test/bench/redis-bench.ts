// redis-benchmark -t set,get -c 50 at -P 1 and -P 16 against redis-server directly, through
// meltemi (--workers 1 and 2), a minimal Node pipe proxy, HAProxy (mode tcp) and twemproxy (the last two when
// installed: Debian's haproxy and nutcracker); interleaved rounds, medians, proxy CPU per request
// from /proc. The last line printed is one JSON object with the results.

import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { cpuSeconds } from './proc-cpu';
import { startHaproxy, startTwemproxy, type ReferenceProxy } from './reference-proxies';
import { median, redisBenchmark } from './redis-benchmark';


export interface RedisBenchOptions {
  rounds: number;
  /** Requests per test (SET and GET each) at -P 1 and at -P 16. */
  requestsP1: number;
  requestsP16: number;
  clients: number;
}

type Target = 'direct' | 'meltemi' | 'meltemi_w2' | 'pipe' | 'haproxy' | 'twemproxy';
type Mode = 'P1' | 'P16';
interface Sample { rps: number; cpuUsPerReq: number | null }



export async function redisBench(opts: RedisBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  // One worker (the figures before workers existed) and two worker threads, the same config.
  const startMeltemi = async (workers: number) => {
    const port = await freePort();
    const proc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: redis
    port: ${port}
    protocol: redis
    route_config:
      routes:
        - name: all
          route: { cluster: redis }
clusters:
  - name: redis
    endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ]
`, port, { args: ['--workers', String(workers)] });
    return { port, proc };
  };
  const m1 = await startMeltemi(1);
  const m2 = await startMeltemi(2);
  const stopMeltemi = async () => { await m1.proc.stop(); await m2.proc.stop(); };
  const pipePort = await freePort();
  const pipe: ChildProcess = spawn(process.execPath, [join(__dirname, 'pipe-proxy.js'), String(pipePort), String(redis.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => pipe.stdout!.once('data', () => resolve()));

  const references: ReferenceProxy[] = [];
  const targets: Partial<Record<Target, { port: number; pid: number | null }>> = {
    direct: { port: redis.port, pid: null },
    meltemi: { port: m1.port, pid: m1.proc.pid },
    meltemi_w2: { port: m2.port, pid: m2.proc.pid },
    pipe: { port: pipePort, pid: pipe.pid! },
  };
  for (const [name, startRef] of [['haproxy', startHaproxy], ['twemproxy', startTwemproxy]] as const) {
    const ref = await startRef(redis.port).catch(async (err) => {
      pipe.kill('SIGTERM');
      for (const r of references) await r.stop();
      await stopMeltemi();
      await redis.stop();
      throw err;
    });
    if (ref === undefined) {
      process.stderr.write(`${name} is not installed: left out (apt-get install ${name === 'haproxy' ? 'haproxy' : 'nutcracker'})\n`);
      continue;
    }
    references.push(ref);
    targets[name] = { port: ref.port, pid: ref.pid };
  }
  const order = (['direct', 'meltemi', 'meltemi_w2', 'pipe', 'haproxy', 'twemproxy'] as Target[]).filter((t) => targets[t] !== undefined);
  const samples: Record<string, Sample[]> = {};
  try {
    // Warm up V8 and Wasm tiering before anything is measured.
    for (const t of order.slice(1)) await redisBenchmark(targets[t]!.port, 16, 100_000, opts.clients);
    for (let round = 1; round <= opts.rounds; round++) {
      for (const mode of ['P1', 'P16'] as Mode[]) {
        const pipeline = mode === 'P1' ? 1 : 16;
        const requests = mode === 'P1' ? opts.requestsP1 : opts.requestsP16;
        for (const target of order) {
          const { port, pid } = targets[target]!;
          const cpu0 = pid ? cpuSeconds(pid) : 0;
          const rps = await redisBenchmark(port, pipeline, requests, opts.clients);
          const cpuUsPerReq = pid ? ((cpuSeconds(pid) - cpu0) * 1e6) / (2 * requests) : null;
          (samples[`${target}.${mode}`] ??= []).push({ rps, cpuUsPerReq });
          process.stderr.write(`round ${round} ${mode} ${target}: ${Math.round(rps)} req/s${cpuUsPerReq === null ? '' : `, proxy CPU ${cpuUsPerReq.toFixed(2)} µs/req`}\n`);
        }
      }
    }
  } finally {
    pipe.kill('SIGTERM');
    for (const ref of references) await ref.stop();
    await stopMeltemi();
    await redis.stop();
  }

  const result: Record<string, unknown> = { benchmark: 'redis', rounds: opts.rounds, clients: opts.clients, requests: { P1: opts.requestsP1, P16: opts.requestsP16 } };
  const rows: string[] = ['| target | mode | req/s (median) | ratio to direct | proxy CPU µs/req |', '|---|---|---|---|---|'];
  for (const mode of ['P1', 'P16'] as Mode[]) {
    const direct = median(samples[`direct.${mode}`].map((s) => s.rps));
    for (const target of order) {
      const list = samples[`${target}.${mode}`];
      const rps = median(list.map((s) => s.rps));
      const cpu = target === 'direct' ? null : median(list.map((s) => s.cpuUsPerReq!));
      const ratio = rps / direct;
      result[`${target}_${mode}_rps`] = Math.round(rps);
      if (target !== 'direct') {
        result[`${target}_${mode}_ratio`] = Number(ratio.toFixed(3));
        result[`${target}_${mode}_cpu_us_per_req`] = Number(cpu!.toFixed(2));
      }
      rows.push(`| ${target} | -c ${opts.clients} -${mode} | ${Math.round(rps)} | ${ratio.toFixed(2)} | ${cpu === null ? '–' : cpu.toFixed(2)} |`);
    }
  }
  process.stdout.write(rows.join('\n') + '\n');
  return result;
}
