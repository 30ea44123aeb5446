// Connection limits, idle timeout and memory overload. At the file-descriptor limit every
// listener and the admin port used to refuse clients silently; now a global cap below that
// limit (derived from it) closes excess connections at once, with a metric and a log line, and
// the admin port and already-connected clients keep working.

import assert from 'node:assert/strict';
import net from 'node:net';
import { parseConfig } from '../../runtime/config/load';
import { Meltemi } from '../../runtime/server';
import { CaptureLogger } from '../helpers/capture-logger';
import { PLUGIN_DIR, ROOT } from '../helpers/paths';
import { metricSum, portOf, RawClient } from '../helpers/proxy';
import { RedisServer } from '../helpers/redis-server';
import { MiB } from './probe';
import { AttackBench } from './attack-harness';

/** Opens `n` connections to `port`; resolves with the sockets and how many the proxy closed. */
async function flood(port: number, n: number): Promise<{ sockets: net.Socket[]; closedByProxy: () => number }> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => { closed++; });
    sockets.push(s);
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(sockets.map((s) => new Promise((r) => (s.connecting ? s.once('connect', r).once('close', r) : r(undefined)))));
  return { sockets, closedByProxy: () => closed };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('containment: connections at the file-descriptor limit', function () {
  this.timeout(60_000);
  let bench: AttackBench;

  before(async () => {
    // 256 descriptors: the derived global cap is (256 - 64) / 2 = 96 downstream connections.
    bench = await AttackBench.start({
      prefix: ['prlimit', '--nofile=256'],
      portNames: ['flood'],
      listeners: (p) => `  - { name: flood, port: ${p.flood}, protocol: redis, route_config: { routes: [ { route: { cluster: target } } ] } }`,
    });
  });

  after(async () => {
    await bench?.kill();
  });

  it('300 idle connections: the excess is closed at once and counted; admin and the healthy client keep working', async () => {
    let opened: net.Socket[] = [];
    await bench.underAttack(async () => {
      const f = await flood(bench.ports.flood, 300);
      opened = f.sockets;
      await until('excess closed', () => f.closedByProxy() >= 300 - 96);
      const metrics = await bench.admin('/metrics');
      assert.equal(metrics.status, 200);
      assert.ok(metricSum(metrics.body, 'meltemi_downstream_cx_overflow_total', { listener: 'flood', reason: 'global_limit' }) >= 300 - 96);
    });
    assert.match(bench.proxy.output.text, /refusing new connections on listener flood: \d+ downstream connections open \(overload\.max_downstream_connections\)/);
    for (const s of opened) s.destroy();
    // Once they are gone, the listener accepts again.
    await until('accepting again', async () => {
      const s = net.connect(bench.ports.flood, '127.0.0.1');
      const ok = await new Promise<boolean>((r) => {
        s.once('error', () => r(false));
        s.write('PING\r\n');
        s.once('data', (d) => r(d.toString() === '+PONG\r\n'));
        s.once('close', () => r(false));
      });
      s.destroy();
      return ok;
    });
  });
});

describe('containment: idle timeout and memory overload', function () {
  this.timeout(60_000);
  let bench: AttackBench;

  before(async () => {
    bench = await AttackBench.start({
      portNames: ['idle'],
      listeners: (p) => `  - { name: idle, port: ${p.idle}, protocol: redis, idle_timeout: 300ms, max_connections: 5, route_config: { routes: [ { route: { cluster: target } } ] } }`,
    });
  });

  after(async () => {
    await bench?.kill();
  });

  it('an idle client is closed after idle_timeout; a client that keeps talking is not', async () => {
    const idle = net.connect(bench.ports.idle, '127.0.0.1');
    const busy = net.connect(bench.ports.idle, '127.0.0.1');
    let idleClosed = 0;
    let busyClosed = false;
    const t0 = Date.now();
    idle.on('close', () => { idleClosed = Date.now() - t0; });
    busy.on('close', () => { busyClosed = true; });
    busy.on('data', () => {});
    const timer = setInterval(() => busy.write('PING\r\n'), 100);
    await until('idle closed', () => idleClosed > 0, 3000);
    clearInterval(timer);
    assert.ok(idleClosed >= 250 && idleClosed < 1500, `closed after ${idleClosed} ms`);
    assert.equal(busyClosed, false);
    busy.destroy();
    const metrics = (await bench.admin('/metrics')).body;
    assert.ok(metricSum(metrics, 'meltemi_downstream_cx_idle_timeout_total', { listener: 'idle' }) >= 1);
  });

  it('max_connections on one listener closes the sixth client at once', async () => {
    const f = await flood(bench.ports.idle, 8);
    await until('three closed', () => f.closedByProxy() >= 3);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(f.closedByProxy(), 3);
    for (const s of f.sockets) s.destroy();
    const metrics = (await bench.admin('/metrics')).body;
    assert.equal(metricSum(metrics, 'meltemi_downstream_cx_overflow_total', { listener: 'idle', reason: 'listener_limit' }), 3);
  });
});

describe('containment: memory over the overload thresholds', function () {
  this.timeout(60_000);
  let bench: AttackBench;

  before(async () => {
    // A limit below what any proxy uses: both actions are in force from the first check.
    bench = await AttackBench.start({ top: 'overload: { memory_limit: 16777216, refresh_interval: 50ms }' });
  });

  after(async () => {
    await bench?.kill();
  });

  it('new connections are refused and counted; admin answers', async () => {
    const metrics = (await bench.admin('/metrics')).body;
    assert.equal(metricSum(metrics, 'meltemi_overload_active', { action: 'stop_accepting' }), 1);
    assert.equal(metricSum(metrics, 'meltemi_overload_active', { action: 'shed_requests' }), 1);
    const reply = await new Promise<string>((resolve) => {
      const s = net.connect(bench.healthyPort, '127.0.0.1', () => s.write('PING\r\n'));
      let got = '';
      s.on('data', (d) => { got += d; });
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    assert.equal(reply, '', 'a new connection is closed without an answer');
    assert.match(bench.proxy.output.text, /overload: resident memory at \d+% of 16777216 bytes; refusing new connections, shedding new requests/);
    const after = (await bench.admin('/metrics')).body;
    assert.ok(metricSum(after, 'meltemi_downstream_cx_overflow_total', { listener: 'healthy', reason: 'overload' }) >= 1);
  });
});

describe('containment: requests shed while memory is over shed_requests_at', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let proxy: Meltemi;
  let rss = 100 * MiB;

  before(async () => {
    redis = await RedisServer.start();
    proxy = new Meltemi(parseConfig(`
admin: { port: 0 }
overload: { memory_limit: ${1000 * MiB}, refresh_interval: 20ms }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners: [ { name: r, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: r } } ] } } ]
clusters: [ { name: r, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] } ]
`, ROOT), { logger: new CaptureLogger(), rss: () => rss });
    await proxy.start();
  });

  after(async () => {
    await proxy?.stop();
    await redis?.stop();
  });

  it('an open connection gets -ERR overloaded past 95%, and is served again below it', async () => {
    const c = new RawClient(portOf(proxy, 'r'));
    await c.connected();
    c.write('PING\r\n');
    await c.until((t) => t === '+PONG\r\n');
    rss = 960 * MiB;
    await until('shedding', () => proxy.overload.shedding);
    c.write('PING\r\n');
    await c.until((t) => t.includes('-ERR meltemi: overloaded'));
    rss = 100 * MiB;
    await until('serving', () => !proxy.overload.shedding);
    const n = c.received.length;
    c.write('PING\r\n');
    await c.until((t) => t.length > n);
    assert.equal(c.received.subarray(n).toString(), '+PONG\r\n');
    assert.equal(proxy.overload.shedRequests, 1);
    c.destroy();
  });
});
