// Hot reload under load: while redis-benchmark and a Thrift client loop run through meltemi,
// the Redis codec file is replaced 100 times, alternating two builds that differ observably
// (build "b" tags requests so a route sends them to another server). 0 failed requests, 0
// dropped connections, every new connection sees the new build; broken builds are rejected
// while the previous generation serves; /plugins and the metrics tell the story.

import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { buildRedisVariant } from './helpers/codec-variants';
import { PLUGIN_DIR, TEST_PLUGIN_DIR } from './helpers/paths';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';
import { startThriftServer, thriftClient, ThriftServer } from './helpers/thrift-peers';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

const ADMIN_TOKEN = 'plugin-reload-test-token-0123456789';

describe('plugin hot reload under load', function () {
  this.timeout(180_000);
  let dir: string;
  let variants: Record<'a' | 'b', Buffer>;
  let serverA: RedisServer;
  let serverB: RedisServer;
  let thrift: ThriftServer;
  let proxy: Meltemi;
  const direct: Redis[] = [];

  /** Replaces redis.wasm atomically and waits for the new generation; returns the latency. */
  async function replace(bytes: Buffer): Promise<number> {
    const before = proxy.plugins.codec('redis')!.generation;
    writeFileSync(join(dir, 'redis.wasm.tmp'), bytes);
    const t0 = performance.now();
    renameSync(join(dir, 'redis.wasm.tmp'), join(dir, 'redis.wasm'));
    while (proxy.plugins.codec('redis')!.generation === before) {
      if (performance.now() - t0 > 5000) throw new Error('no new generation within 5 s');
      await new Promise((r) => setTimeout(r, 1));
    }
    return performance.now() - t0;
  }

  before(async () => {
    variants = { a: readFileSync(buildRedisVariant('a')), b: readFileSync(buildRedisVariant('b')) };
    [serverA, serverB] = await Promise.all([RedisServer.start(), RedisServer.start()]);
    thrift = await startThriftServer('t', { transport: 'framed', protocol: 'binary' });
    dir = mkdtempSync(join(tmpdir(), 'meltemi-plugins-'));
    writeFileSync(join(dir, 'redis.wasm'), variants.a);
    copyFileSync(join(PLUGIN_DIR, 'thrift.wasm'), join(dir, 'thrift.wasm'));
    const tokenFile = join(mkdtempSync(join(tmpdir(), 'meltemi-token-')), 'token');
    writeFileSync(tokenFile, ADMIN_TOKEN);
    proxy = await startProxy(`
admin: { port: 0, token_file: ${JSON.stringify(tokenFile)} }
plugins: { directory: ${JSON.stringify(dir)}, watch: true }
listeners:
  - name: redis
    port: 0
    protocol: redis
    route_config:
      routes:
        - { name: b, match: { metadata: [ { name: build, exact_match: b } ] }, route: { cluster: b } }
        - { name: a, route: { cluster: a } }
  - { name: thrift, port: 0, protocol: thrift, route_config: { routes: [ { route: { cluster: thrift } } ] } }
clusters:
  - { name: a, endpoints: [ { address: 127.0.0.1, port: ${serverA.port} } ] }
  - { name: b, endpoints: [ { address: 127.0.0.1, port: ${serverB.port} } ] }
  - { name: thrift, endpoints: [ { address: 127.0.0.1, port: ${thrift.port} } ] }
`);
  });

  after(async () => {
    for (const c of direct) c.disconnect();
    await proxy?.stop();
    await Promise.all([serverA?.stop(), serverB?.stop(), thrift?.stop()]);
  });

  it('100 replacements during redis-benchmark and a Thrift loop: 0 failures, 0 dropped connections, new connections see the new build', async () => {
    const port = portOf(proxy, 'redis');
    const bench: ChildProcess = spawn('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'set,get', '-c', '20', '-P', '4', '-l', '-e', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let benchOut = '';
    bench.stdout!.on('data', (d) => { benchOut += d; });
    bench.stderr!.on('data', (d) => { benchOut += d; });
    const tc = await thriftClient(portOf(proxy, 'thrift'), { transport: 'framed', protocol: 'binary' });
    let thriftCalls = 0;
    const thriftFailures: string[] = [];
    let stop = false;
    const thriftLoop = (async () => {
      while (!stop) {
        try { if ((await tc.echo.who()) === 't') thriftCalls++; } catch (err) { thriftFailures.push((err as Error).message); }
      }
    })();
    // Connections that live through every reload: none may be closed or see an error.
    const keepers = Array.from({ length: 20 }, () => new Redis({ port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null }));
    let keeperCalls = 0;
    const keeperFailures: string[] = [];
    const keeperLoops = keepers.map((k, i) => {
      k.on('close', () => keeperFailures.push(`connection ${i} closed`));
      return (async () => {
        while (!stop) {
          try { await k.incr(`keeper:${i}`); keeperCalls++; } catch (err) { keeperFailures.push((err as Error).message); }
        }
      })();
    });
    await new Promise((r) => setTimeout(r, 300));
    const rssBefore = process.memoryUsage().rss;
    const latencies: number[] = [];
    const wrong: string[] = [];
    for (let i = 1; i <= 100; i++) {
      const tag = i % 2 ? 'b' : 'a';
      latencies.push(await replace(variants[tag]));
      // A connection opened now must be served by the new build.
      const c = new Redis({ port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
      await c.set(`reload:${i}`, tag);
      const landed = (await (tag === 'b' ? serverB : serverA).command(`GET reload:${i}`)).includes(tag);
      if (!landed) wrong.push(`reload ${i}: build ${tag} not in effect for a new connection`);
      c.disconnect();
    }
    stop = true;
    await Promise.all([thriftLoop, ...keeperLoops]);
    const keepersAlive = keepers.filter((k) => k.status === 'ready').length;
    for (const k of keepers) {
      k.removeAllListeners('close');
      k.disconnect();
    }
    tc.close();
    await new Promise((r) => setTimeout(r, 200));
    const stillRunning = bench.exitCode === null;
    bench.kill('SIGKILL');
    const metrics = (await adminGet(proxy.admin!.port, '/metrics')).body;
    const rssAfter = process.memoryUsage().rss;
    process.stdout.write(`      reload latency (file renamed -> new generation serving) p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms; test-process RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> ${(rssAfter / 2 ** 20).toFixed(0)} MB; live generations ${proxy.plugins.generations().length}\n`);

    assert.deepEqual(wrong, []);
    assert.ok(stillRunning, `redis-benchmark kept running (a dropped connection makes it exit): ${benchOut.slice(-300)}`);
    assert.equal(/Error/.exec(benchOut)?.[0], undefined, `redis-benchmark reported an error: ${/.{0,80}Error.{0,80}/.exec(benchOut)?.[0]}`);
    assert.equal(keepersAlive, 20, 'all long-lived connections survived the 100 reloads');
    assert.deepEqual(keeperFailures, []);
    assert.ok(keeperCalls > 1000);
    assert.equal(metricSum(metrics, 'meltemi_request_errors_total', { listener: 'redis' }), 0);
    assert.equal(metricSum(metrics, 'meltemi_request_decoding_errors_total', { listener: 'redis' }), 0);
    assert.ok(thriftCalls > 100);
    assert.deepEqual(thriftFailures, []);
    assert.equal(metricSum(metrics, 'meltemi_plugin_reloads_total', { plugin: 'redis' }), 100);
  });

  it('a broken build is rejected with its reason; the previous generation keeps serving', async () => {
    const current = proxy.plugins.codec('redis')!;
    const rejectedBefore = proxy.plugins.rejected.length;
    writeFileSync(join(dir, 'redis.wasm'), readFileSync(join(TEST_PLUGIN_DIR, 'init-trap.wasm')).subarray(0, 100));
    const deadline = Date.now() + 5000;
    while (proxy.plugins.rejected.length === rejectedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.match(proxy.plugins.rejected.at(-1)!.reason, /redis\.wasm: not a valid WebAssembly module/);
    assert.equal(proxy.plugins.codec('redis'), current);
    const c = new Redis({ port: portOf(proxy, 'redis'), host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false });
    direct.push(c);
    assert.equal(await c.set('after-broken', '1'), 'OK');
    assert.match((await adminGet(proxy.admin!.port, '/metrics')).body, /meltemi_plugin_rejections_total [1-9]/);
  });

  it('removing the file keeps the last generation serving and says so in /plugins; POST /plugins/reload works', async () => {
    unlinkSync(join(dir, 'redis.wasm'));
    const deadline = Date.now() + 5000;
    while (!proxy.plugins.codec('redis')!.removed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const plugins = JSON.parse((await adminGet(proxy.admin!.port, '/plugins')).body) as Array<Record<string, unknown>>;
    const redis = plugins.find((p) => p.name === 'redis' && p.current)!;
    assert.equal(redis.removed, true);
    assert.match(String(redis.sha256), /^[0-9a-f]{64}$/);
    assert.equal(typeof redis.generation, 'number');
    assert.equal(typeof redis.connections, 'number');
    const c = new Redis({ port: portOf(proxy, 'redis'), host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false });
    direct.push(c);
    assert.equal(await c.set('after-removal', '1'), 'OK');
    writeFileSync(join(dir, 'redis.wasm'), variants.a);
    const before = proxy.plugins.codec('redis')!.generation;
    const reloaded = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = require('node:http').request({ host: '127.0.0.1', port: proxy.admin!.port, path: '/plugins/reload', method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, (res: import('node:http').IncomingMessage) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(reloaded.status, 200);
    assert.ok(proxy.plugins.codec('redis')!.generation > before, 'a new generation after the explicit reload');
  });
});
