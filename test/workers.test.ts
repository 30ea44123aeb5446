// Worker threads sharing the listeners (--workers N): connections spread over the workers, a
// plugin reload or an RDS push reaches all of them as one generation, a generation one worker
// cannot take is taken by none, /metrics sums them, and a worker that dies is replaced while its
// clients see their connections close.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { parseConfig } from '../runtime/config/load';
import type { Meltemi } from '../runtime/server';
import { WorkerPool } from '../runtime/workers/worker-pool';
import { defaultWorkers, quotaCpus } from '../runtime/workers/worker-count';
import { encodeTunnel } from '../runtime/xds/route-tunnel';
import { CaptureLogger } from './helpers/capture-logger';
import { buildRedisVariant } from './helpers/codec-variants';
import { PLUGIN_DIR, ROOT } from './helpers/paths';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { RdsServer } from './helpers/rds-server';
import { RedisServer } from './helpers/redis-server';

const redisClient = (port: number) => new Redis({ port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0, lazyConnect: true });

/** `n` connected clients that each answered a PING. */
async function clients(port: number, n: number): Promise<Redis[]> {
  const cs = Array.from({ length: n }, () => redisClient(port));
  await Promise.all(cs.map(async (c) => { await c.connect(); await c.ping(); }));
  return cs;
}

type Statuses = Awaited<ReturnType<WorkerPool['statuses']>>;

/** Polls the workers until `ok` holds of their reports. */
async function workersUntil(pool: WorkerPool, ok: (s: Statuses) => boolean, ms = 10_000): Promise<Statuses> {
  const t0 = Date.now();
  for (;;) {
    const s = await pool.statuses();
    if (ok(s)) return s;
    if (Date.now() - t0 > ms) throw new Error(`workers never reached the state: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('workers: listeners shared by worker threads', function () {
  this.timeout(60_000);
  let a: RedisServer;
  let b: RedisServer;
  let dir: string;
  let proxy: Meltemi;
  let logger: CaptureLogger;
  const open: Redis[] = [];

  before(async () => {
    [a, b] = await Promise.all([RedisServer.start(), RedisServer.start()]);
    dir = mkdtempSync(join(tmpdir(), 'meltemi-workers-'));
    copyFileSync(buildRedisVariant('a'), join(dir, 'redis.wasm'));
    copyFileSync(join(PLUGIN_DIR, 'thrift.wasm'), join(dir, 'thrift.wasm'));
    logger = new CaptureLogger();
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(dir)}, watch: false }
listeners:
  - name: redis
    port: 0
    protocol: redis
    route_config:
      routes:
        - { name: b, match: { metadata: [ { name: build, exact_match: b } ] }, route: { cluster: b } }
        - { name: a, route: { cluster: a } }
clusters:
  - { name: a, endpoints: [ { address: 127.0.0.1, port: ${a.port} } ] }
  - { name: b, endpoints: [ { address: 127.0.0.1, port: ${b.port} } ] }
`, { workers: 2, logger });
  });

  after(async () => {
    for (const c of open) c.disconnect();
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('spreads connections over both workers, each serving its own', async () => {
    const cs = await clients(portOf(proxy, 'redis'), 40);
    open.push(...cs);
    await Promise.all(cs.map((c, i) => c.set(`spread:${i}`, String(i))));
    assert.equal(await a.client().get('spread:39'), '39');
    const s = await proxy.workers!.statuses();
    assert.deepEqual(s.map((w) => w.running), [true, true]);
    assert.equal(s.reduce((n, w) => n + (w.status?.connections ?? 0), 0), 40);
    for (const w of s) assert.ok((w.status?.connections ?? 0) > 0, `worker ${w.worker} holds none of 40 connections: ${JSON.stringify(s)}`);
  });

  it('/metrics sums the workers; process metrics are counted once', async () => {
    const before = metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_requests_total', { listener: 'redis' });
    const cs = await clients(portOf(proxy, 'redis'), 20);
    open.push(...cs);
    await Promise.all(cs.map((c, i) => c.get(`metrics:${i}`)));
    const text = (await adminGet(proxy.admin!.port, '/metrics')).body;
    // 20 PINGs and 20 GETs, whichever worker served them.
    assert.equal(metricSum(text, 'meltemi_requests_total', { listener: 'redis' }) - before, 40);
    assert.equal(text.split('\n').filter((l) => l.startsWith('meltemi_process_process_resident_memory_bytes ')).length, 1);
  });

  it('a plugin reload reaches every worker as one generation; /plugins and /config_dump say which each runs', async () => {
    const port = proxy.admin!.port;
    const before = JSON.parse((await adminGet(port, '/config_dump')).body).workers.committed_generation.id as number;
    writeFileSync(join(dir, 'redis.wasm.tmp'), readFileSync(buildRedisVariant('b')));
    renameSync(join(dir, 'redis.wasm.tmp'), join(dir, 'redis.wasm'));
    await proxy.reloadPlugins();
    const dump = JSON.parse((await adminGet(port, '/config_dump')).body).workers;
    assert.ok(dump.committed_generation.id > before);
    assert.deepEqual(dump.threads.map((t: { generation: number }) => t.generation), [dump.committed_generation.id, dump.committed_generation.id]);
    const plugins = JSON.parse((await adminGet(port, '/plugins')).body) as Array<{ name: string; current: boolean; generation: number; connections: number; workers: Array<{ current: boolean }> }>;
    const current = plugins.find((p) => p.name === 'redis' && p.current)!;
    assert.deepEqual(current.workers.map((w) => w.current), [true, true]);
    // The earlier tests' 60 connections stay on build a, in the workers: /plugins lists that generation too.
    const older = plugins.filter((p) => p.name === 'redis' && !p.current);
    assert.equal(older.reduce((n, p) => n + p.connections, 0), open.length);
    // New connections, on either worker, run build b: every key lands on server b.
    const cs = await clients(portOf(proxy, 'redis'), 20);
    open.push(...cs);
    await Promise.all(cs.map((c, i) => c.set(`reloaded:${i}`, 'x')));
    for (let i = 0; i < 20; i++) assert.equal(await b.client().exists(`reloaded:${i}`), 1, `reloaded:${i} went to a`);
  });

  it('a worker that dies is replaced; its clients see their connections close, the others keep working', async () => {
    const cs = await clients(portOf(proxy, 'redis'), 30);
    open.push(...cs);
    const pool = proxy.workers!;
    const victim = pool.threads[0]!;
    const closed = new Set<Redis>();
    const counted = metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_requests_total', { listener: 'redis' });
    const s0 = await pool.statuses();
    // Every client opened so far is on one of the two workers.
    const [held, kept] = s0.map((w) => w.status!.connections);
    assert.equal(held + kept, open.length);
    assert.ok(held > 0);
    const allClosed = new Promise<void>((resolve) => {
      for (const c of open) c.once('close', () => { closed.add(c); if (closed.size === held) resolve(); });
    });
    await victim.terminate();
    // Every connection the victim held closes (no client hangs); the others are still served.
    await allClosed;
    const survivors = open.filter((c) => !closed.has(c));
    assert.equal(survivors.length, kept);
    await Promise.all(survivors.map((c, i) => c.set(`survivor:${i}`, 'x')));
    const s = await workersUntil(pool, (st) => st[0].running && st[0].status !== undefined);
    assert.equal(s[0].restarts, 1);
    assert.equal(s[0].generation, s[1].generation, 'the new worker runs the committed generation');
    assert.ok(logger.lines.some((l) => l.level === 'error' && /worker 0 ended/.test(l.message)));
    // New connections reach the new worker too, with the reloaded build.
    await workersUntil(pool, (st) => st.every((w) => w.status !== undefined));
    // Both workers poll one queue and libuv accepts until it is empty, so a burst can land
    // whole on the worker that woke first: connect in batches until the new one has taken some.
    let taken = 0;
    for (let batch = 0; batch < 10 && taken === 0; batch++) {
      const fresh = await clients(portOf(proxy, 'redis'), 10);
      open.push(...fresh);
      await Promise.all(fresh.map((c, i) => c.set(`fresh:${batch}:${i}`, 'x')));
      taken = (await pool.statuses())[0].status!.connections;
    }
    assert.ok(taken > 0, 'the new worker accepts');
    // The dead worker's counters are kept: the sum never goes down (Prometheus would see a reset).
    const now = metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_requests_total', { listener: 'redis' });
    assert.ok(now >= counted + survivors.length + 20, `requests_total went from ${counted} to ${now}`);
  });

  it('a generation lost to a worker that dies while preparing it is offered again', async () => {
    const pool = proxy.workers!;
    writeFileSync(join(dir, 'redis.wasm.tmp'), readFileSync(buildRedisVariant('a')));
    renameSync(join(dir, 'redis.wasm.tmp'), join(dir, 'redis.wasm'));
    const reload = proxy.reloadPlugins();
    void pool.threads[1]!.terminate();
    await reload;
    const redisGeneration = proxy.plugins.codec('redis')!.generation;
    // Eventually both workers run the primary's current build, whichever way the race went.
    await workersUntil(pool, (st) => st.every((w) => w.status?.plugins.some((p) => p.name === 'redis' && p.current && p.generation === redisGeneration)), 15_000);
    const cs = await clients(portOf(proxy, 'redis'), 20);
    open.push(...cs);
    await Promise.all(cs.map((c, i) => c.set(`again:${i}`, 'x')));
    for (let i = 0; i < 20; i++) assert.equal(await a.client().exists(`again:${i}`), 1, `again:${i} went to b`);
  });

  it('a removed plugin file keeps its generation in every worker, installed once', async () => {
    const metrics = async () => metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_plugin_reloads_total', { plugin: 'thrift' });
    const before = await metrics();
    const logged = logger.lines.length;
    unlinkSync(join(dir, 'thrift.wasm'));
    await proxy.reloadPlugins();
    await proxy.reloadPlugins();
    await proxy.reloadPlugins();
    const s = await proxy.workers!.statuses();
    for (const w of s) assert.equal(w.status!.plugins.filter((p) => p.name === 'thrift').length, 1, JSON.stringify(w.status!.plugins));
    assert.equal(await metrics(), before);
    // No worker installed thrift again (each install is logged, at debug, with the worker's index).
    const installs = logger.lines.slice(logged).filter((l) => /loaded codec thrift/.test(l.message));
    assert.deepEqual(installs, []);
  });
});

describe('workers: RDS pushes reach every worker', function () {
  this.timeout(60_000);
  const NAME = 'redis.workers.svc.cluster.local_6379';
  const defaultTo = (cluster: string) => encodeTunnel({ name: NAME, routes: [{ name: 'default', match: { metadata: [] }, route: { kind: 'cluster', cluster }, requestMutation: [] }] });
  let a: RedisServer;
  let b: RedisServer;
  let rds: RdsServer;
  let proxy: Meltemi;
  const open: Redis[] = [];

  before(async () => {
    [a, b] = await Promise.all([RedisServer.start(), RedisServer.start()]);
    rds = new RdsServer();
    await rds.start();
    rds.push(NAME, '1', defaultTo('a'));
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
xds: { address: 127.0.0.1, port: ${rds.port}, node: { id: "sidecar~127.0.0.1~w.default~default.svc.cluster.local", cluster: meltemi }, initial_backoff: 100ms, max_backoff: 1s }
listeners:
  - { name: redis, port: 0, protocol: redis, rds: { route_config_name: ${NAME} } }
clusters:
  - { name: a, endpoints: [ { address: 127.0.0.1, port: ${a.port} } ] }
  - { name: b, endpoints: [ { address: 127.0.0.1, port: ${b.port} } ] }
`, { workers: 2 });
  });

  after(async () => {
    for (const c of open) c.disconnect();
    await proxy?.stop();
    await rds?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('routes from RDS serve on every worker from the first request, and a push moves all of them', async () => {
    const cs = await clients(portOf(proxy, 'redis'), 30);
    open.push(...cs);
    await Promise.all(cs.map((c, i) => c.set(`v1:${i}`, 'x')));
    for (let i = 0; i < 30; i++) assert.equal(await a.client().exists(`v1:${i}`), 1);
    const committed = proxy.workers!.lastCommitted!.id;
    rds.push(NAME, '2', defaultTo('b'));
    await workersUntil(proxy.workers!, (s) => s.every((w) => (w.status?.generation ?? 0) > committed));
    // Live connections, on both workers, send their next requests to b.
    await Promise.all(cs.map((c, i) => c.set(`v2:${i}`, 'x')));
    for (let i = 0; i < 30; i++) assert.equal(await b.client().exists(`v2:${i}`), 1, `v2:${i} stayed on a`);
  });
});

describe('workers: a generation is taken by all workers or by none', function () {
  this.timeout(30_000);
  let pool: WorkerPool;
  const generation = (id: number) => ({ id, plugins: [], routes: {}, clusters: [] });

  before(async () => {
    const config = parseConfig(`plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }\nlisteners: [ { name: l, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: c } } ] } } ]\nclusters: [ { name: c, endpoints: [ { address: 127.0.0.1, port: 1 } ] } ]\n`, ROOT);
    pool = new WorkerPool(config, 2, new CaptureLogger(), join(__dirname, 'helpers', 'refusing-worker.js'));
    await pool.start(generation(1));
  });

  after(async () => {
    await pool?.stop();
  });

  it('one worker refusing generation 2 leaves both on 1; generation 3 reaches both', async () => {
    assert.equal(await pool.publish(generation(2)), false);
    let s = await pool.statuses();
    assert.deepEqual(s.map((w) => w.status?.generation), [1, 1]);
    assert.equal(pool.lastRejected?.id, 2);
    assert.equal(pool.lastRejected?.worker, 1);
    assert.match(pool.lastRejected!.reason, /out of plugin memory/);
    assert.equal(await pool.publish(generation(3)), true);
    s = await pool.statuses();
    assert.deepEqual(s.map((w) => w.status?.generation), [3, 3]);
  });

  it('stop() while a replacement waits behind a publish leaves no worker behind', async () => {
    // Worker 1 never answers generation 99: the publish holds the queue (up to 10 s).
    const publishing = pool.publish(generation(99));
    await pool.threads[0]!.terminate();
    // The replacement's timer (100 ms) fires; its start waits in the queue behind the publish.
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(pool.threads[0], undefined);
    await pool.stop();
    assert.equal(await publishing, false);
    assert.deepEqual(pool.threads, [undefined, undefined]);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(pool.threads, [undefined, undefined]);
  });
});

describe('workers: how many', () => {
  const cases: Array<[string | undefined, number | undefined]> = [
    ['max 100000', undefined],
    ['150000 100000', 2],
    ['50000 100000', 1],
    ['400000 100000\n', 4],
    ['garbage', undefined],
    [undefined, undefined],
  ];
  for (const [line, cpus] of cases) {
    it(`cpu.max ${JSON.stringify(line)} allows ${cpus ?? 'no limit'}`, () => assert.equal(quotaCpus(line), cpus));
  }

  it('defaults to the CPUs allowed, at most 2 for a sidecar', () => {
    assert.equal(defaultWorkers(() => '50000 100000'), 1);
    assert.equal(defaultWorkers(() => 'max 100000'), Math.min(2, (require('node:os') as typeof import('node:os')).availableParallelism()));
  });

  it('refuses workers with LDS listeners, naming the field', async () => {
    const config = parseConfig(`plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }\nxds: { address: 127.0.0.1, port: 1, lds: true, node: { id: x, cluster: y } }\nlisteners: []\n`, ROOT);
    const { Meltemi } = await import('../runtime/server');
    await assert.rejects(new Meltemi(config, { workers: 2, logger: new CaptureLogger() }).start(), /xds\.lds: listeners from LDS are not served by worker threads/);
  });

  it('a port another process holds fails the start, naming the listener', async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startProxy(`plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }\nlisteners:\n  - { name: taken, port: ${port}, protocol: redis, route_config: { routes: [ { route: { cluster: c } } ] } }\nclusters: [ { name: c, endpoints: [ { address: 127.0.0.1, port: 1 } ] } ]\n`, { workers: 2 }),
        /listener taken cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
    } finally {
      holder.close();
    }
  });
});
