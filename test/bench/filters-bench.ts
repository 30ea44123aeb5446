// redis-benchmark -t set,get -c 50 -P 16 through meltemi with 0, 1 and 3 pass-through Wasm filters
// of two kinds — noop-filter (continues without reading anything: the cost of a filter call
// itself) and probe-filter (looks up four metadata keys, then continues) — against redis-server
// directly in the same rounds; interleaved rounds, medians, proxy CPU per request from /proc.
// What each filter costs is the CPU difference to the empty chain.

import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR, TEST_PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { measureVariants, type VariantFigures } from './redis-variants';


export interface FiltersBenchOptions { rounds: number; requests: number; clients: number }


const VARIANTS = [
  { key: 'filters0', filter: '', count: 0 },
  { key: 'noop1', filter: 'noop-filter', count: 1 },
  { key: 'noop3', filter: 'noop-filter', count: 3 },
  { key: 'probe1', filter: 'probe-filter', count: 1 },
  { key: 'probe3', filter: 'probe-filter', count: 3 },
] as const;

export async function filtersBench(opts: FiltersBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-bench-filters-'));
  copyFileSync(join(PLUGIN_DIR, 'redis.wasm'), join(dir, 'redis.wasm'));
  for (const f of ['probe-filter', 'noop-filter']) copyFileSync(join(TEST_PLUGIN_DIR, `${f}.wasm`), join(dir, `${f}.wasm`));
  const proxies: Array<{ variant: typeof VARIANTS[number]; port: number; proc: MeltemiProcess }> = [];
  for (const variant of VARIANTS) {
    const port = await freePort();
    const chain = `[ ${Array.from({ length: variant.count }, () => `{ name: ${variant.filter} }`).join(', ')} ]`;
    const proc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(dir)}, watch: false }
listeners:
  - { name: redis, port: ${port}, protocol: redis, filters: ${chain}, route_config: { routes: [ { route: { cluster: redis } } ] } }
clusters:
  - { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
`, port, { args: ['--workers', '1'] });
    proxies.push({ variant, port, proc });
  }
  let figures: VariantFigures;
  try {
    figures = await measureVariants(redis.port, proxies.map((p) => ({ key: p.variant.key, port: p.port, proc: p.proc })), opts);
  } finally {
    for (const p of proxies) await p.proc.stop();
    await redis.stop();
  }
  const direct = figures.direct;
  const result: Record<string, unknown> = { benchmark: 'filters', rounds: opts.rounds, clients: opts.clients, requests: opts.requests, direct_rps: Math.round(direct) };
  const rows = ['| Wasm filters | req/s (median) | ratio to direct | proxy CPU µs/req | over the empty chain |', '|---|---|---|---|---|'];
  const base = figures.cpu('filters0');
  for (const v of VARIANTS) {
    const rps = figures.rps(v.key);
    const cpu = figures.cpu(v.key);
    result[`${v.key}_rps`] = Math.round(rps);
    result[`${v.key}_cpu_us_per_req`] = Number(cpu.toFixed(3));
    const label = v.count === 0 ? '0' : `${v.count} × ${v.filter}`;
    rows.push(`| ${label} | ${Math.round(rps)} | ${(rps / direct).toFixed(2)} | ${cpu.toFixed(2)} | ${v.count === 0 ? '–' : `+${(cpu - base).toFixed(2)} µs (${((cpu - base) / v.count).toFixed(2)} per filter)`} |`);
  }
  process.stdout.write(rows.join('\n') + '\n');
  return result;
}
