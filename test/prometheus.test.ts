// A real Prometheus (Debian's) scrapes meltemi's admin port while known Redis traffic goes to
// two services; the PromQL of Istio's Grafana dashboards (request rate by destination service,
// error rate by response code, p99 duration) gives the values that traffic must give.
//
// The traffic is sent between two scrapes (the test waits for one, then sends it at once), so
// irate() — which the dashboards use — sees exactly the baseline and the final counts: 2 s
// apart, the rates are the counts over 2 s.

import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { PLUGIN_DIR } from './helpers/paths';
import { freePort } from './helpers/ports';
import { portOf, startProxy } from './helpers/proxy';
import { RedisServer, redisClient } from './helpers/redis-server';

const INTERVAL_S = 2;
const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;

type Sample = { metric: Record<string, string>; value?: [number, string]; values?: Array<[number, string]> };

function get<T>(port: number, path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as T);
        } catch {
          reject(new Error(`${path}: ${res.statusCode} ${body.slice(0, 200)}`));
        }
      });
    }).on('error', reject);
  });
}

describe('a real Prometheus scraping meltemi: Istio dashboard queries', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let proxy: Meltemi;
  let prometheus: ChildProcess;
  let promPort: number;
  const clients: Redis[] = [];

  const query = async (q: string, time: number): Promise<Sample[]> => {
    const r = await get<{ status: string; data: { result: Sample[] }; error?: string }>(promPort, `/api/v1/query?query=${encodeURIComponent(q)}&time=${time}`);
    if (r.status !== 'success') throw new Error(`${q}: ${r.error}`);
    return r.data.result;
  };
  const lastScrape = async (): Promise<string> => {
    const r = await get<{ data: { activeTargets: Array<{ lastScrape: string; health: string }> } }>(promPort, '/api/v1/targets');
    const t = r.data.activeTargets[0];
    return t && t.health === 'up' ? t.lastScrape : '';
  };
  const until = async (what: string, check: () => Promise<boolean>, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    if (!hasPrometheus) throw new Error('prometheus is not installed: apt-get install --no-install-recommends prometheus (.ci/run does)');
    redis = await RedisServer.start();
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
telemetry:
  workload: { workload: web-v1, namespace: shop, app: web, version: v1 }
listeners:
  - name: redis
    port: 0
    protocol: redis
    filters:
      - name: fault
        config: { delay: { fixedDelay: 300ms, match: { attributes: { key: { prefix: "b:" } } } } }
    route_config:
      routes:
        - name: a
          match: { metadata: [ { name: key, prefix_match: "a:" } ] }
          route: { cluster: "outbound|6379||a.shop.svc.cluster.local" }
        - name: b
          match: { metadata: [ { name: key, prefix_match: "b:" } ] }
          route: { cluster: "outbound|6379||b.shop.svc.cluster.local" }
clusters:
  - name: "outbound|6379||a.shop.svc.cluster.local"
    endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ]
  - name: "outbound|6379||b.shop.svc.cluster.local"
    endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ]
`);
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-prom-'));
    writeFileSync(join(dir, 'prometheus.yml'), `
global: { scrape_interval: ${INTERVAL_S}s, scrape_timeout: 1s }
scrape_configs:
  - job_name: meltemi
    static_configs: [ { targets: [ "127.0.0.1:${proxy.admin!.port}" ] } ]
`);
    promPort = await freePort();
    prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: 'ignore' });
    await until('Prometheus to scrape meltemi', async () => (await lastScrape()) !== '');
    for (let i = 0; i < 10; i++) clients.push(redisClient(portOf(proxy, 'redis')));
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    prometheus?.kill('SIGKILL');
    await proxy?.stop();
    await redis?.stop();
  });

  /** a: `ok` SETs and `errors` wrong-arity HSETs; b: `slow` GETs (each delayed 300 ms), all at once. */
  const traffic = (ok: number, errors: number, slow: number) => Promise.all([
    ...Array.from({ length: ok }, (_, i) => clients[i % 10].set(`a:${i}`, 'v')),
    ...Array.from({ length: errors }, (_, i) => clients[i % 10].call('HSET', `a:h${i}`).catch(() => undefined)),
    ...Array.from({ length: slow }, (_, i) => clients[i % 10].get(`b:${i}`)),
  ]);

  it('request rate by service, error rate by response code and p99 duration are the traffic\'s', async () => {
    await traffic(2, 1, 1); // the series exist before the measured interval
    const total = async (t?: number) => Number((await query('sum(istio_requests_total{reporter="source"})', t ?? Date.now() / 1000))[0]?.value?.[1] ?? 0);
    await until('the baseline scraped', async () => (await total()) === 4);
    // Right after a scrape, the traffic goes out in well under an interval.
    const seen = await lastScrape();
    await until('the next scrape', async () => (await lastScrape()) !== seen, 10_000);
    await traffic(20, 10, 10);
    await until('the traffic scraped', async () => (await total()) === 44);
    // The first sample with the final counts: queries are evaluated there.
    const samples = (await query('istio_requests_total{reporter="source",destination_service_name="a",response_code="0"}[30s]', Date.now() / 1000))[0].values!;
    const at = samples.find(([, v]) => Number(v) === 22)![0];
    const before = samples.filter(([t]) => t < at).at(-1)!;
    assert.equal(Number(before[1]), 2, 'the sample before the traffic holds the baseline only');
    assert.ok(Math.abs(at - before[0] - INTERVAL_S) < 0.1, `samples ${INTERVAL_S}s apart (${at - before[0]})`);
    const dt = at - before[0];

    // Istio service dashboard: incoming request rate by destination service.
    const byService = await query('round(sum(irate(istio_requests_total{reporter="source"}[1m])) by (destination_service_name), 0.001)', at);
    const rate = Object.fromEntries(byService.map((s) => [s.metric.destination_service_name, Number(s.value![1])]));
    assert.ok(Math.abs(rate.a - 30 / dt) < 0.01, `a: ${rate.a}`);
    assert.ok(Math.abs(rate.b - 10 / dt) < 0.01, `b: ${rate.b}`);

    // Error rate by response code (the dashboards' non-success share; meta-protocol codes are 0 ok, 1 error).
    const byCode = await query('sum(irate(istio_requests_total{reporter="source",destination_service_name="a"}[1m])) by (response_code)', at);
    const code = Object.fromEntries(byCode.map((s) => [s.metric.response_code, Number(s.value![1])]));
    assert.ok(Math.abs(code['0'] - 20 / dt) < 0.01 && Math.abs(code['1'] - 10 / dt) < 0.01, JSON.stringify(code));
    const errorShare = await query('sum(irate(istio_requests_total{reporter="source",response_code!="0"}[1m])) / sum(irate(istio_requests_total{reporter="source"}[1m]))', at);
    assert.ok(Math.abs(Number(errorShare[0].value![1]) - 10 / 40) < 1e-9, JSON.stringify(errorShare));

    // P99 request duration of b: every request took 300 ms and a little, in the (250, 500] bucket.
    const p99 = await query('histogram_quantile(0.99, sum(irate(istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="b"}[1m])) by (le))', at);
    assert.ok(Math.abs(Number(p99[0].value![1]) - 497.5) < 1e-6, JSON.stringify(p99));
    const p50a = await query('histogram_quantile(0.50, sum(irate(istio_request_duration_milliseconds_bucket{reporter="source",destination_service_name="a"}[1m])) by (le))', at);
    assert.ok(Number(p50a[0].value![1]) < 250, `a is not delayed: ${JSON.stringify(p50a)}`);
  });
});
