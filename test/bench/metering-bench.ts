// What fuel metering costs: the same redis-benchmark -P 16 load through meltemi processes that
// differ only in plugins.fuel_per_call (0: unmetered; the default: metered), with no filter and
// with three probe-filters; interleaved rounds, medians of proxy CPU per request from /proc.

import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR, TEST_PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { cpuSeconds } from './proc-cpu';
import { median, redisBenchmark } from './redis-benchmark';

export interface MeteringBenchOptions { rounds: number; requests: number; clients: number }

const VARIANTS = [
  { key: 'unmetered, codec only', fuel: 0, filters: 0 },
  { key: 'metered, codec only', fuel: undefined, filters: 0 },
  { key: 'unmetered, 3 probe-filters', fuel: 0, filters: 3 },
  { key: 'metered, 3 probe-filters', fuel: undefined, filters: 3 },
] as const;

export async function meteringBench(opts: MeteringBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-bench-metering-'));
  copyFileSync(join(PLUGIN_DIR, 'redis.wasm'), join(dir, 'redis.wasm'));
  copyFileSync(join(TEST_PLUGIN_DIR, 'probe-filter.wasm'), join(dir, 'probe-filter.wasm'));
  const proxies: Array<{ key: string; port: number; proc: MeltemiProcess; cpu: number[] }> = [];
  try {
    for (const v of VARIANTS) {
      const port = await freePort();
      const filters = `[ ${Array.from({ length: v.filters }, () => '{ name: probe-filter }').join(', ')} ]`;
      const proc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(dir)}, watch: false${v.fuel === undefined ? '' : `, fuel_per_call: ${v.fuel}`} }
listeners:
  - { name: redis, port: ${port}, protocol: redis, filters: ${filters}, route_config: { routes: [ { route: { cluster: redis } } ] } }
clusters:
  - { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
`, port, { args: ['--workers', '1'] });
      proxies.push({ key: v.key, port, proc, cpu: [] });
    }
    for (const p of proxies) await redisBenchmark(p.port, 16, 100_000, opts.clients); // warm-up
    for (let round = 1; round <= opts.rounds; round++) {
      for (const p of proxies) {
        const cpu0 = cpuSeconds(p.proc.pid);
        await redisBenchmark(p.port, 16, opts.requests, opts.clients);
        p.cpu.push(((cpuSeconds(p.proc.pid) - cpu0) * 1e6) / (2 * opts.requests));
        process.stderr.write(`round ${round} ${p.key}: proxy CPU ${p.cpu[p.cpu.length - 1].toFixed(2)} µs/req\n`);
      }
    }
  } finally {
    for (const p of proxies) await p.proc.stop();
    await redis.stop();
  }
  const result: Record<string, unknown> = { benchmark: 'metering', rounds: opts.rounds, requests: opts.requests };
  const rows = ['| plugins | proxy CPU µs/req (median) | metering costs |', '|---|---|---|'];
  for (let i = 0; i < proxies.length; i++) {
    const cpu = median(proxies[i].cpu);
    result[proxies[i].key] = Number(cpu.toFixed(3));
    const unmetered = i % 2 === 1 ? median(proxies[i - 1].cpu) : undefined;
    rows.push(`| ${proxies[i].key} | ${cpu.toFixed(2)} | ${unmetered === undefined ? '–' : `${(cpu - unmetered >= 0 ? '+' : '')}${(cpu - unmetered).toFixed(2)} µs`} |`);
  }
  process.stdout.write(rows.join('\n') + '\n');
  return result;
}
