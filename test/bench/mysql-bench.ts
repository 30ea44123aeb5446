// mysql2 clients -> meltemi (1 worker) -> MariaDB, against the same clients straight to MariaDB:
// point queries, 1000-row result sets and whole sessions (login, ping, quit), interleaved rounds,
// medians, and meltemi's CPU per operation.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { MariaDbServer } from '../helpers/mariadb-server';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { cpuSeconds } from './proc-cpu';

const run = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const MODES = ['point', 'rows', 'connect'] as const;
type Mode = (typeof MODES)[number];

async function load(port: number, clients: number, ms: number, mode: Mode): Promise<{ ops: number; seconds: number }> {
  const { stdout } = await run(process.execPath, [join(__dirname, 'mysql-load.js'), String(port), String(clients), String(ms), mode]);
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

export async function mysqlBench(opts: { rounds: number; clients: number; durationMs: number }): Promise<Record<string, unknown>> {
  const db = await MariaDbServer.start();
  const rows = Array.from({ length: 1000 }, (_, i) => `(${i + 1}, 'name-${i + 1}')`).join(',');
  await db.admin(`CREATE USER 'bench'@'%' IDENTIFIED BY 'bench'; CREATE DATABASE bench; GRANT ALL ON bench.* TO 'bench'@'%';
    CREATE TABLE bench.t (id INT PRIMARY KEY, name VARCHAR(40)); INSERT INTO bench.t VALUES ${rows};`);
  const port = await freePort();
  const meltemi = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: mysql
    port: ${port}
    protocol: mysql
    route_config: { routes: [ { route: { cluster: db } } ] }
clusters:
  - name: db
    endpoints: [ { address: 127.0.0.1, port: ${db.port} } ]
`, port, { args: ['--workers', '1'] });
  const samples = new Map<string, Array<{ rate: number; cpu: number | null }>>();
  try {
    await load(port, opts.clients, 1000, 'point'); // warm-up
    for (let round = 1; round <= opts.rounds; round++) {
      for (const mode of MODES) {
        for (const target of ['direct', 'meltemi'] as const) {
          const cpu0 = target === 'meltemi' ? cpuSeconds(meltemi.pid) : 0;
          const r = await load(target === 'direct' ? db.port : port, opts.clients, opts.durationMs, mode);
          const cpu = target === 'meltemi' ? ((cpuSeconds(meltemi.pid) - cpu0) * 1e6) / r.ops : null;
          const key = `${mode}/${target}`;
          if (!samples.has(key)) samples.set(key, []);
          samples.get(key)!.push({ rate: r.ops / r.seconds, cpu });
          process.stderr.write(`round ${round} mysql ${mode} ${target}: ${Math.round(r.ops / r.seconds)} ops/s${cpu === null ? '' : `, proxy CPU ${cpu.toFixed(1)} µs/op`}\n`);
        }
      }
    }
  } finally {
    await meltemi.stop();
    await db.stop();
  }
  const result: Record<string, unknown> = { benchmark: 'mysql', clients: opts.clients, rounds: opts.rounds, duration_ms: opts.durationMs };
  const lines = ['| load | direct ops/s | meltemi ops/s | ratio | proxy CPU µs/op |', '|---|---|---|---|---|'];
  const what: Record<Mode, string> = { point: 'point SELECT', rows: '1000-row SELECT', connect: 'login + ping + quit' };
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
