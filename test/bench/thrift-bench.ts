// Apache Thrift client -> meltemi -> Thrift server (framed binary, 50 concurrent clients):
// calls/s direct vs through meltemi, interleaved rounds, medians, proxy CPU per call.

import { ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { services } from '../helpers/thrift-peers';
import { cpuSeconds } from './proc-cpu';

const run = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function load(port: number, clients: number, ms: number): Promise<{ calls: number; seconds: number }> {
  const { stdout } = await run(process.execPath, [join(__dirname, 'thrift-load.js'), String(port), String(clients), String(ms)]);
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

export async function thriftBench(opts: { rounds: number; clients: number; durationMs: number }): Promise<Record<string, unknown>> {
  services(); // generate the Thrift code once, before any child process needs it
  const server: ChildProcess = spawn(process.execPath, [join(__dirname, 'thrift-server.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const serverPort = await new Promise<number>((resolve) => server.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
  const port = await freePort();
  const meltemi = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: thrift
    port: ${port}
    protocol: thrift
    route_config: { routes: [ { route: { cluster: thrift } } ] }
clusters:
  - name: thrift
    endpoints: [ { address: 127.0.0.1, port: ${serverPort} } ]
`, port, { args: ['--workers', '1'] });
  const samples: Record<'direct' | 'meltemi', Array<{ rate: number; cpu: number | null }>> = { direct: [], meltemi: [] };
  try {
    await load(port, opts.clients, 1000); // warm-up
    for (let round = 1; round <= opts.rounds; round++) {
      for (const target of ['direct', 'meltemi'] as const) {
        const cpu0 = target === 'meltemi' ? cpuSeconds(meltemi.pid) : 0;
        const r = await load(target === 'direct' ? serverPort : port, opts.clients, opts.durationMs);
        const cpu = target === 'meltemi' ? ((cpuSeconds(meltemi.pid) - cpu0) * 1e6) / r.calls : null;
        samples[target].push({ rate: r.calls / r.seconds, cpu });
        process.stderr.write(`round ${round} thrift ${target}: ${Math.round(r.calls / r.seconds)} calls/s${cpu === null ? '' : `, proxy CPU ${cpu.toFixed(1)} µs/call`}\n`);
      }
    }
  } finally {
    await meltemi.stop();
    server.kill('SIGTERM');
  }
  const direct = median(samples.direct.map((s) => s.rate));
  const through = median(samples.meltemi.map((s) => s.rate));
  const cpu = median(samples.meltemi.map((s) => s.cpu!));
  process.stdout.write([
    '| target | calls/s (median) | ratio to direct | proxy CPU µs/call |', '|---|---|---|---|',
    `| direct thrift server | ${Math.round(direct)} | 1.00 | – |`,
    `| meltemi | ${Math.round(through)} | ${(through / direct).toFixed(2)} | ${cpu.toFixed(1)} |`,
  ].join('\n') + '\n');
  return { benchmark: 'thrift', transport: 'framed', protocol: 'binary', clients: opts.clients, rounds: opts.rounds, direct_calls_per_s: Math.round(direct), meltemi_calls_per_s: Math.round(through), ratio: Number((through / direct).toFixed(3)), meltemi_cpu_us_per_call: Number(cpu.toFixed(2)) };
}
