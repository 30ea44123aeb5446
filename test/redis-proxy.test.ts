// meltemi in front of real redis-servers: redis-benchmark and ioredis through the proxy,
// key-prefix routing checked on each server directly, ordering across clusters, pinning of
// connection-scoped commands, malformed input, failing upstreams, metrics and admin.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { freePort } from './helpers/ports';
import { adminGet, metricSum, portOf, RawClient, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';

const run = promisify(execFile);
const cmd = (...args: string[]) => `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');

describe('redis through meltemi', function () {
  this.timeout(120_000);
  let main: RedisServer;
  let cache: RedisServer;
  let proxy: Meltemi;
  let port: number;
  let deadPort: number;
  let closer: net.Server;
  const clients: Redis[] = [];

  /** An ioredis client through the proxy; `shared` speaks RESP2 without CLIENT SETINFO so it is not pinned. */
  const client = (opts: { shared?: boolean; port?: number; readyCheck?: boolean } = {}) => {
    const c = new Redis({
      port: opts.port ?? port, host: '127.0.0.1', maxRetriesPerRequest: 0, enableOfflineQueue: true,
      enableReadyCheck: opts.readyCheck ?? true,
      ...(opts.shared ? { protocol: 2, disableClientInfo: true } : {}),
    });
    clients.push(c);
    return c;
  };
  const direct = (server: RedisServer, db = 0) => {
    const c = new Redis({ port: server.port, host: '127.0.0.1', db, protocol: 2, disableClientInfo: true });
    clients.push(c);
    return c;
  };
  const metrics = async () => (await adminGet(proxy.admin!.port, '/metrics')).body;

  before(async () => {
    [main, cache] = await Promise.all([RedisServer.start({ args: ['--enable-debug-command', 'yes'] }), RedisServer.start()]);
    deadPort = await freePort();
    closer = net.createServer((s) => s.on('data', () => s.destroy())).listen(0, '127.0.0.1');
    await new Promise((r) => closer.once('listening', r));
    const closerPort = (closer.address() as net.AddressInfo).port;
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: build/plugins }
listeners:
  - name: redis
    port: 0
    protocol: redis
    route_config:
      routes:
        - name: cache
          match: { metadata: [ { name: key, prefix_match: "cache:" } ] }
          route: { cluster: cache }
        - name: dead
          match: { metadata: [ { name: key, prefix_match: "dead:" } ] }
          route: { cluster: dead }
        - name: closer
          match: { metadata: [ { name: key, prefix_match: "closer:" } ] }
          route: { cluster: closer }
        - name: default
          route: { cluster: main }
  - name: strict
    port: 0
    protocol: redis
    route_config:
      routes:
        - name: only-cache
          match: { metadata: [ { name: key, prefix_match: "cache:" } ] }
          route: { cluster: cache }
  - name: narrow
    port: 0
    protocol: redis
    max_inflight_per_connection: 64
    route_config: { routes: [ { route: { cluster: main } } ] }
  - name: tiny
    port: 0
    protocol: redis
    max_frame_size: 1024
    route_config: { routes: [ { route: { cluster: main } } ] }
clusters:
  - name: main
    endpoints: [ { address: 127.0.0.1, port: ${main.port} } ]
  - name: cache
    endpoints: [ { address: 127.0.0.1, port: ${cache.port} } ]
  - name: dead
    connect_timeout: 500ms
    endpoints: [ { address: 127.0.0.1, port: ${deadPort} } ]
  - name: closer
    endpoints: [ { address: 127.0.0.1, port: ${closerPort} } ]
`);
    port = portOf(proxy, 'redis');
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await proxy?.stop();
    await new Promise((r) => closer?.close(r));
    await Promise.all([main?.stop(), cache?.stop()]);
  });

  it('redis-benchmark completes with 0 errors, every request counted', async () => {
    const before = await metrics();
    const n = 20_000;
    const { stdout } = await run('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'set,get,incr,lpush,lpop,mset', '-n', String(n), '-c', '20', '-P', '8', '-e', '--csv']);
    assert.doesNotMatch(stdout, /error/i);
    assert.equal(stdout.trim().split('\n').filter((l) => /^"(SET|GET|INCR|LPUSH|LPOP|MSET)/.test(l)).length, 6);
    const after = await metrics();
    const delta = (name: string) => metricSum(after, name, { listener: 'redis' }) - metricSum(before, name, { listener: 'redis' });
    assert.ok(delta('meltemi_requests_total') >= 6 * n, `requests counted: ${delta('meltemi_requests_total')}`);
    assert.equal(delta('meltemi_request_errors_total'), 0);
  });

  it('ioredis: a pipeline of 1000 commands, answered in order', async () => {
    const r = client({ shared: true });
    const p = r.pipeline();
    for (let i = 0; i < 500; i++) p.set(`pipe:${i}`, `v${i}`);
    for (let i = 0; i < 500; i++) p.get(`pipe:${i}`);
    const results = await p.exec();
    assert.equal(results!.length, 1000);
    results!.forEach(([err, value], i) => {
      assert.equal(err, null);
      assert.equal(value, i < 500 ? 'OK' : `v${i - 500}`);
    });
  });

  it('ioredis: 1 MB values round-trip byte for byte (RESP3 client, pinned)', async () => {
    const r = client();
    const values = [randomBytes(1 << 20), randomBytes((1 << 20) + 7)];
    await Promise.all(values.map((v, i) => r.set(`big:${i}`, v)));
    const back = await Promise.all(values.map((_, i) => r.getBuffer(`big:${i}`)));
    back.forEach((b, i) => assert.ok(b!.equals(values[i]), `value ${i} intact`));
    assert.ok((await direct(main).getBuffer('big:1'))!.equals(values[1]), 'stored on the server as sent');
  });

  it('ioredis: 200 concurrent connections', async () => {
    const conns = Array.from({ length: 200 }, (_, i) => client({ shared: i % 2 === 0 }));
    await Promise.all(conns.map(async (c, i) => {
      for (let k = 0; k < 10; k++) {
        await c.incr('concurrent:total');
        assert.equal(await c.incr(`concurrent:${i}`), k + 1);
      }
    }));
    assert.equal(await direct(main).get('concurrent:total'), '2000');
    await Promise.all(conns.map((c) => c.quit()));
  });

  it('routes by key prefix: each key lands on its own server', async () => {
    const r = client({ shared: true });
    await r.mset('cache:a', '1', 'cache:b', '2');
    await r.set('user:1', 'x');
    await r.set('cache:c', '3');
    const [onCache, onMain] = [direct(cache), direct(main)];
    assert.deepEqual((await onCache.keys('cache:*')).sort(), ['cache:a', 'cache:b', 'cache:c'], 'MSET routes on its first key');
    assert.equal(await onCache.exists('user:1'), 0);
    assert.equal(await onMain.get('user:1'), 'x');
    assert.equal(await onMain.exists('cache:c'), 0);
  });

  it('keeps responses in request order when a later request is answered first', async () => {
    await direct(cache).set('cache:fast', 'quick');
    const raw = new RawClient(port);
    raw.write(cmd('DEBUG', 'SLEEP', '0.2') + cmd('GET', 'cache:fast') + cmd('PING'));
    const text = await raw.until((t) => t.endsWith('+PONG\r\n'));
    assert.equal(text, '+OK\r\n$5\r\nquick\r\n+PONG\r\n');
    raw.destroy();
  });

  it('frames split across reads, one byte per write', async () => {
    const raw = new RawClient(port);
    await raw.connected();
    const bytes = Buffer.from(cmd('SET', 'split:k', 'abc') + 'GET split:k\r\n' + cmd('PING'));
    for (const b of bytes) {
      raw.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await raw.until((t) => t.endsWith('+PONG\r\n')), '+OK\r\n$3\r\nabc\r\n+PONG\r\n');
    raw.destroy();
  });

  it('pins a client that sends a connection-scoped command (SELECT) to its own upstream connection', async () => {
    const a = client({ shared: true });
    const b = client({ shared: true });
    await a.select(3);
    await Promise.all([a.set('scoped', 'in-db-3'), b.set('scoped', 'in-db-0')]);
    assert.equal(await direct(main, 3).get('scoped'), 'in-db-3');
    assert.equal(await direct(main, 0).get('scoped'), 'in-db-0', 'the shared connection was not switched to db 3');
  });

  it('a client that half-closes after sending still gets every reply', async () => {
    const raw = new RawClient(port);
    raw.end(cmd('DEBUG', 'SLEEP', '0.1') + cmd('SET', 'half:k', 'v') + cmd('GET', 'half:k'));
    await raw.waitClosed();
    assert.equal(raw.received.toString(), '+OK\r\n+OK\r\n$1\r\nv\r\n');
  });

  it('answers QUIT and closes only that client', async () => {
    const raw = new RawClient(port);
    raw.write(cmd('SET', 'quit:k', 'v') + cmd('QUIT'));
    await raw.waitClosed();
    assert.equal(raw.received.toString(), '+OK\r\n+OK\r\n');
    assert.equal(await client({ shared: true }).get('quit:k'), 'v');
  });

  // Pushes (pub/sub messages, MONITOR output) come with no request to answer: a subscriber is
  // told and closed, never left subscribed to nothing while PUBLISH counts it as a receiver.
  for (const command of [['SUBSCRIBE', 'news'], ['PSUBSCRIBE', 'n*'], ['MONITOR']]) {
    it(`${command[0]} is answered with an error that says why, and that client is closed`, async () => {
      const raw = new RawClient(port);
      raw.write(cmd('SET', `sub:${command[0]}`, 'v') + cmd(...command) + cmd('GET', 'sub:k'));
      await raw.waitClosed();
      assert.match(raw.received.toString(), /^\+OK\r\n-ERR meltemi: protocol error: pub\/sub and MONITOR are not supported through meltemi \(their messages would not reach you\)[^\r\n]*\r\n$/);
      const publisher = client({ shared: true });
      assert.equal(await publisher.publish('news', 'hello'), 0, 'no subscriber was left behind on the server');
    });
  }

  it('malformed RESP closes only its connection, with a protocol error reply', async () => {
    const healthy = client({ shared: true });
    await healthy.set('healthy', '1');
    const decodingErrors = metricSum(await metrics(), 'meltemi_request_decoding_errors_total', { listener: 'redis' });
    const bad = new RawClient(port);
    bad.write(cmd('SET', 'before', 'bad') + '*1\r\n:oops\r\n' + cmd('SET', 'after', 'bad'));
    await bad.waitClosed();
    assert.match(bad.received.toString(), /^\+OK\r\n-ERR meltemi: protocol error: expected '\$', got ':'\r\n$/);
    assert.equal(await healthy.get('healthy'), '1');
    assert.equal(await direct(main).exists('after'), 0, 'nothing after the malformed frame was forwarded');
    assert.equal(metricSum(await metrics(), 'meltemi_request_decoding_errors_total', { listener: 'redis' }), decodingErrors + 1);
  });

  it('backpressure: a client that floods without reading is no longer read, then gets every reply in order', async () => {
    const value = 'x'.repeat(1000);
    const raw = new RawClient(portOf(proxy, 'narrow'));
    await raw.connected();
    raw.pause();
    // ~20 MB each way, more than loopback socket buffers absorb: replies back up, then requests.
    const n = 40_000;
    raw.write(Array.from({ length: n }, (_, i) => (i % 2 === 0 ? cmd('SET', 'bp:v', value) : cmd('GET', 'bp:v'))).join(''));
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(raw.unsentBytes > 1_000_000, `the proxy stopped reading this client: ${raw.unsentBytes} bytes still unsent`);
    raw.resume();
    let expected = '';
    for (let i = 0; i < n; i++) expected += i % 2 === 0 ? '+OK\r\n' : `$1000\r\n${value}\r\n`;
    const text = await raw.until((t) => t.length >= expected.length, 60_000);
    assert.ok(text === expected, 'every reply, in request order');
    raw.destroy();
  });

  it('a frame larger than max_frame_size closes that connection with an error', async () => {
    const raw = new RawClient(portOf(proxy, 'tiny'));
    raw.write(cmd('SET', 'k', 'x'.repeat(4096)));
    await raw.waitClosed();
    assert.match(raw.received.toString(), /^-ERR meltemi: protocol error: frame of \d+ bytes exceeds max_frame_size 1024\r\n$/);
  });

  it('no matching route: -ERR, and the connection keeps working', async () => {
    // ioredis's ready check sends INFO, which this listener has no route for.
    const r = client({ shared: true, port: portOf(proxy, 'strict'), readyCheck: false });
    await assert.rejects(r.get('other'), /meltemi: no route matched/);
    assert.equal(await r.set('cache:strict', 'ok'), 'OK');
  });

  it('upstream down: -ERR (connect failure, then no healthy upstream), other routes keep serving, and it recovers', async () => {
    const r = client({ shared: true });
    await assert.rejects(r.get('dead:1'), /cannot connect to upstream 127\.0\.0\.1:\d+ of cluster dead \(ECONNREFUSED\)/);
    await assert.rejects(r.get('dead:2'), /no healthy upstream in cluster "dead"/);
    assert.equal(await r.set('alive', 'yes'), 'OK');
    const revived = await RedisServer.start({ port: deadPort });
    try {
      await new Promise((res) => setTimeout(res, 600)); // the first backoff is 250 ms
      assert.equal(await r.set('dead:3', 'back'), 'OK');
      assert.equal(await direct(revived).get('dead:3'), 'back');
    } finally {
      await revived.stop();
    }
  });

  it('upstream closes mid-request: -ERR naming the upstream', async () => {
    const r = client({ shared: true });
    await assert.rejects(r.get('closer:1'), /upstream 127\.0\.0\.1:\d+ of cluster closer closed before responding/);
    assert.equal(await r.ping(), 'PONG');
  });

  it('admin: /metrics by listener, route and cluster; /ready; /config_dump', async () => {
    const text = await metrics();
    assert.ok(metricSum(text, 'meltemi_requests_total', { listener: 'redis', route: 'cache', cluster: 'cache' }) > 0);
    assert.ok(metricSum(text, 'meltemi_request_duration_seconds_count', { listener: 'redis', route: 'default', cluster: 'main' }) > 0);
    assert.ok(metricSum(text, 'meltemi_local_replies_total', { listener: 'redis', kind: 'no_healthy_upstream' }) >= 1);
    assert.ok(metricSum(text, 'meltemi_upstream_connect_failures_total', { cluster: 'dead' }) >= 1);
    assert.match(text, /meltemi_active_requests\{listener="redis",route="default",cluster="main"\} 0/);
    assert.equal((await adminGet(proxy.admin!.port, '/ready')).status, 200);
    const dump = JSON.parse((await adminGet(proxy.admin!.port, '/config_dump')).body);
    assert.deepEqual(dump.config.listeners.map((l: { name: string }) => l.name), ['redis', 'strict', 'narrow', 'tiny']);
    assert.equal(dump.config.listeners[0].port, port, 'the bound port, not 0');
    const redisPlugin = dump.plugins.find((p: { name: string }) => p.name === 'redis');
    assert.equal(redisPlugin.protocol, 'redis');
    assert.match(redisPlugin.sha256, /^[0-9a-f]{64}$/);
  });
});
