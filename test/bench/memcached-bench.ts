// Memcached clients -> meltemi (1 worker) -> memcached, against the same clients straight to
// memcached: text gets, sets and 10-key multigets (memcache-client), binary gets (memjs) and raw
// pipelined gets; interleaved rounds, medians, and meltemi's CPU per operation.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { MemcachedServer } from '../helpers/memcached-server';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { cpuSeconds } from './proc-cpu';

const run = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const MODES = ['get', 'set', 'multiget', 'binary', 'pipeline'] as const;
type Mode = (typeof MODES)[number];

async function load(port: number, clients: number, ms: number, mode: Mode): Promise<{ ops: number; seconds: number }> {
  const { stdout } = await run(process.execPath, [join(__dirname, 'memcached-load.js'), String(port), String(clients), String(ms), mode]);
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

export async function memcachedBench(opts: { rounds: number; clients: number; durationMs: number }): Promise<Record<string, unknown>> {
  const db = await MemcachedServer.start(['-t', '1']);
  const port = await freePort();
  // Binary clients go to a listener whose shared connections speak binary (in auto mode each binary client has its own).
  const binaryPort = await freePort();
  const meltemi = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: memcached
    port: ${port}
    protocol: memcached
    route_config: { routes: [ { route: { cluster: db } } ] }
  - name: memcached-binary
    port: ${binaryPort}
    protocol: memcached
    codec_config: { protocol: binary }
    route_config: { routes: [ { route: { cluster: db } } ] }
clusters:
  - name: db
    endpoints: [ { address: 127.0.0.1, port: ${db.port} } ]
`, port, { args: ['--workers', '1'] });
  const samples = new Map<string, Array<{ rate: number; cpu: number | null }>>();
  try {
    await load(port, opts.clients, 1000, 'get'); // warm-up
    for (let round = 1; round <= opts.rounds; round++) {
      for (const mode of MODES) {
        for (const target of ['direct', 'meltemi'] as const) {
          const cpu0 = target === 'meltemi' ? cpuSeconds(meltemi.pid) : 0;
          const r = await load(target === 'direct' ? db.port : mode === 'binary' ? binaryPort : port, opts.clients, opts.durationMs, mode);
          const cpu = target === 'meltemi' ? ((cpuSeconds(meltemi.pid) - cpu0) * 1e6) / r.ops : null;
          const key = `${mode}/${target}`;
          if (!samples.has(key)) samples.set(key, []);
          samples.get(key)!.push({ rate: r.ops / r.seconds, cpu });
          process.stderr.write(`round ${round} memcached ${mode} ${target}: ${Math.round(r.ops / r.seconds)} ops/s${cpu === null ? '' : `, proxy CPU ${cpu.toFixed(1)} µs/op`}\n`);
        }
      }
    }
  } finally {
    await meltemi.stop();
    await db.stop();
  }
  const result: Record<string, unknown> = { benchmark: 'memcached', clients: opts.clients, rounds: opts.rounds, duration_ms: opts.durationMs };
  const lines = ['| load | direct ops/s | meltemi ops/s | ratio | proxy CPU µs/op |', '|---|---|---|---|---|'];
  const what: Record<Mode, string> = { get: 'text get (memcache-client)', set: 'text set, 100 B', multiget: 'text get of 10 keys', binary: 'binary get (memjs)', pipeline: 'text get, 16 pipelined' };
  for (const mode of MODES) {
    const direct = median(samples.get(`${mode}/direct`)!.map((s) => s.rate));
    const through = median(samples.get(`${mode}/meltemi`)!.map((s) => s.rate));
    const cpu = median(samples.get(`${mode}/meltemi`)!.map((s) => s.cpu!));
    lines.push(`| ${what[mode]} | ${Math.round(direct)} | ${Math.round(through)} | ${(through / direct).toFixed(2)} | ${cpu.toFixed(1)} |`);
    result[mode] = { direct_ops_per_s: Math.round(direct), meltemi_ops_per_s: Math.round(through), ratio: Number((through / direct).toFixed(3)), meltemi_cpu_us_per_op: Number(cpu.toFixed(2)) };
  }
  process.stdout.write(lines.join('\n') + '\n');
  return result;
}
