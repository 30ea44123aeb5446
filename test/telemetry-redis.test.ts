// Istio's standard metrics and access logs for Redis through one meltemi, against a real
// redis-server: each way a request can end (answered, answered with an error, connect failure,
// no route) gives its response code and Envoy response flag, the same in the metric labels and
// in the log lines; the JSON log has Istio's fields and its errors-only filter; the TCP metrics
// count connections and bytes. Configs that cannot be logged are refused naming the field.

import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { validateConfig } from '../runtime/config/validate';
import type { Meltemi } from '../runtime/server';
import { MELTEMI_BIN, PLUGIN_DIR } from './helpers/paths';
import { freePort } from './helpers/ports';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { RedisServer, redisClient } from './helpers/redis-server';
import { CaptureLogger } from './helpers/capture-logger';

const HOST = 'cache.shop.svc.cluster.local';
const CLUSTER = `outbound|6379||${HOST}`;

/**
 * A proxy's YAML with one Redis listener (`redis`, port 0) routing everything to `cluster` at
 * `redisPort`; `telemetry` and `listener` are extra YAML lines for those sections.
 */
function oneListener(redisPort: number, opts: { telemetry?: string; listener?: string; cluster?: string } = {}): string {
  const cluster = opts.cluster ?? CLUSTER;
  return `
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
${opts.telemetry ? `telemetry:\n  ${opts.telemetry}` : ''}
listeners:
  - name: redis
    port: 0
    protocol: redis
    ${opts.listener ?? ''}
    route_config: { routes: [ { route: { cluster: "${cluster}" } } ] }
clusters:
  - name: "${cluster}"
    endpoints: [ { address: 127.0.0.1, port: ${redisPort} } ]
`;
}

describe('Istio metrics and access logs (Redis)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let proxy: Meltemi;
  let client: Redis;
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-log-'));
  const textLog = join(dir, 'access.log');
  const jsonLog = join(dir, 'errors.json');

  before(async () => {
    redis = await RedisServer.start();
    const dead = await freePort(); // nothing listens there: a connect failure
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
telemetry:
  workload: { workload: web-v2, namespace: shop, app: web, version: v2 }
  access_log:
    - path: ${textLog}
      format: "%REQUEST_PROPERTY(command)% %REQUEST_PROPERTY(key):5% code=%RESPONSE_CODE% flags=%RESPONSE_FLAGS% route=%ROUTE_NAME% up=%UPSTREAM_HOST% in=%BYTES_RECEIVED% out=%BYTES_SENT%"
    - path: ${jsonLog}
      json: true
      filter: { errors_only: true }
listeners:
  - name: redis
    port: 0
    protocol: redis
    route_config:
      routes:
        - name: ok
          match: { metadata: [ { name: key, prefix_match: "ok:" } ] }
          route: { cluster: "${CLUSTER}" }
        - name: dead
          match: { metadata: [ { name: key, prefix_match: "dead:" } ] }
          route: { cluster: dead }
clusters:
  - name: "${CLUSTER}"
    endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ]
  - name: dead
    endpoints: [ { address: 127.0.0.1, port: ${dead} } ]
`);
    client = redisClient(portOf(proxy, 'redis'));
  });

  after(async () => {
    client?.disconnect();
    await proxy?.stop();
    await redis?.stop();
  });

  // [what, command, expected code, expected flags, expected route, destination_service]
  const endings: Array<[string, string[], string, string, string, string]> = [
    ['answered', ['SET', 'ok:one', '1'], '0', '-', 'ok', HOST],
    ['answered with an error', ['HSET', 'ok:one', 'f'], '1', '-', 'ok', HOST],
    ['a connect failure', ['GET', 'dead:x'], '1', 'UF', 'dead', 'dead'],
    ['no route', ['GET', 'elsewhere'], '1', 'NR', '-', 'unknown'],
  ];

  it('each ending has its code and flag in istio_requests_total, duration and sizes', async () => {
    for (const [, args] of endings) await client.call(args[0], ...args.slice(1)).catch(() => undefined);
    const text = (await adminGet(proxy.admin!.port, '/metrics')).body;
    for (const [what, , code, flags, , service] of endings) {
      const labels = { reporter: 'source', source_workload: 'web-v2', source_version: 'v2', destination_service: service, request_protocol: 'redis', response_code: code, response_flags: flags };
      assert.equal(metricSum(text, 'istio_requests_total', labels), 1, `${what}: ${JSON.stringify(labels)}\n${text.split('\n').filter((l) => l.startsWith('istio_requests_total')).join('\n')}`);
      assert.equal(metricSum(text, 'istio_request_duration_milliseconds_count', labels), 1, what);
      assert.equal(metricSum(text, 'istio_request_bytes_count', labels), 1, what);
    }
    // SET ok:one 1 is 32 bytes of RESP; its +OK reply 5.
    assert.equal(metricSum(text, 'istio_request_bytes_sum', { response_code: '0' }), 32);
    assert.equal(metricSum(text, 'istio_response_bytes_sum', { response_code: '0' }), 5);
    assert.equal(metricSum(text, 'istio_request_bytes_bucket', { response_code: '0', le: '10' }), 0);
    assert.equal(metricSum(text, 'istio_request_bytes_bucket', { response_code: '0', le: '100' }), 1);
    assert.ok(metricSum(text, 'meltemi_requests_total') >= 4, 'meltemi\'s own metrics stay');
  });

  it('the access log has one line per request with the same code and flag; the errors-only JSON log has Istio\'s fields', async () => {
    await proxy.stop(); // flushes the logs
    const lines = readFileSync(textLog, 'utf8').trim().split('\n');
    assert.deepEqual(lines.map((l) => l.replace(/up=127\.0\.0\.1:\d+/, 'up=H').replace(/out=\d+/, 'out=N')), [
      'SET ok:on code=0 flags=- route=ok up=H in=32 out=N',
      'HSET ok:on code=1 flags=- route=ok up=H in=33 out=N',
      'GET dead: code=1 flags=UF route=dead up=H in=25 out=N',
      'GET elsew code=1 flags=NR route=- up=- in=28 out=N',
    ]);
    assert.match(lines[0], new RegExp(`up=127\\.0\\.0\\.1:${redis.port} `));
    const json = readFileSync(jsonLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(json.map((j) => [j.method, j.response_code, j.response_flags]), [['HSET', 1, '-'], ['GET', 1, 'UF'], ['GET', 1, 'NR']]);
    for (const field of ['start_time', 'route_name', 'method', 'path', 'protocol', 'response_code', 'response_flags', 'response_code_details', 'bytes_received', 'bytes_sent', 'duration', 'upstream_host', 'upstream_cluster', 'downstream_local_address', 'downstream_remote_address']) {
      assert.ok(field in json[0], `${field} is in the JSON log`);
    }
    assert.equal(json[1].response_code_details, 'upstream_connect_failure');
    assert.equal(json[2].response_code_details, 'route_not_found');
    assert.equal(json[0].protocol, 'redis');
  });

  it('istio_tcp_* counted the client connection and its bytes', async () => {
    // The proxy stopped above; its metrics were read before. Start fresh on another proxy to read TCP counts.
    const p = await startProxy(oneListener(redis.port));
    try {
      const c = redisClient(portOf(p, 'redis'));
      await c.set('k', 'v');
      c.disconnect();
      let text = '';
      for (let i = 0; i < 100 && metricSum(text, 'istio_tcp_connections_closed_total') < 1; i++) {
        await new Promise((r) => setTimeout(r, 20));
        text = (await adminGet(p.admin!.port, '/metrics')).body;
      }
      const labels = { reporter: 'source', destination_service: HOST, request_protocol: 'tcp' };
      assert.equal(metricSum(text, 'istio_tcp_connections_opened_total', labels), 1);
      assert.equal(metricSum(text, 'istio_tcp_connections_closed_total', labels), 1);
      assert.ok(metricSum(text, 'istio_tcp_received_bytes_total', labels) >= 27, text);
      assert.ok(metricSum(text, 'istio_tcp_sent_bytes_total', labels) >= 5);
    } finally {
      await p.stop();
    }
  });
});

describe('Istio metrics and access logs with two worker threads', function () {
  this.timeout(30_000);
  it('the primary sums the workers\' Istio rows; both workers append whole lines to one log', async () => {
    const redis = await RedisServer.start();
    const log = join(mkdtempSync(join(tmpdir(), 'meltemi-log-')), 'access.log');
    const proxy = await startProxy(oneListener(redis.port, { telemetry: `access_log: [ { path: ${log}, format: "%REQUEST_PROPERTY(key)% %RESPONSE_CODE%" } ]` }), { workers: 2 });
    const port = portOf(proxy, 'redis');
    const clients = Array.from({ length: 8 }, () => redisClient(port));
    try {
      await Promise.all(clients.map((c, i) => Promise.all(Array.from({ length: 25 }, (_, j) => c.set(`k${i}-${j}`, 'v')))));
      const text = (await adminGet(proxy.admin!.port, '/metrics')).body;
      assert.equal(metricSum(text, 'istio_requests_total', { destination_service: HOST, response_code: '0' }), 200);
      assert.equal(text.split('\n').filter((l) => l.startsWith('istio_requests_total{')).length, 1, 'one series, not one per worker');
      assert.equal(metricSum(text, 'istio_tcp_connections_opened_total'), 8);
    } finally {
      for (const c of clients) c.disconnect();
      await proxy.stop();
      await redis.stop();
    }
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(lines.length, 200);
    assert.ok(lines.every((l) => /^k\d-\d+ 0$/.test(l)), 'no line torn or interleaved');
  });
});

describe('a client that leaves before its answer', function () {
  this.timeout(30_000);
  it('is counted with DC (and logged) when it leaves, not forgotten', async () => {
    const redis = await RedisServer.start();
    const log = join(mkdtempSync(join(tmpdir(), 'meltemi-dc-')), 'a.log');
    const proxy = await startProxy(oneListener(redis.port, {
      telemetry: `access_log: [ { path: ${log}, format: "%REQUEST_PROPERTY(key)% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%" } ]`,
      listener: 'filters: [ { name: fault, config: { delay: { fixedDelay: 300ms } } } ]',
    }));
    try {
      const socket = net.connect(portOf(proxy, 'redis'), '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      socket.write('*2\r\n$3\r\nGET\r\n$4\r\ngone\r\n');
      await new Promise((r) => setTimeout(r, 50));
      socket.resetAndDestroy();
      let text = '';
      for (let i = 0; i < 100 && metricSum(text, 'istio_requests_total', { response_flags: 'DC' }) < 1; i++) {
        await new Promise((r) => setTimeout(r, 20));
        text = (await adminGet(proxy.admin!.port, '/metrics')).body;
      }
      assert.equal(metricSum(text, 'istio_requests_total', { response_flags: 'DC', response_code: '1' }), 1);
      await new Promise((r) => setTimeout(r, 400)); // the delayed request goes on upstream: not counted twice
      assert.equal(metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'istio_requests_total'), 1);
    } finally {
      await proxy.stop();
      await redis.stop();
    }
    assert.equal(readFileSync(log, 'utf8'), 'gone DC downstream_remote_disconnect\n');
  });
});

describe('telemetry when its outputs fail', function () {
  this.timeout(30_000);
  it('an unreachable collector: requests are served, lost spans are counted and logged once', async () => {
    const redis = await RedisServer.start();
    const logger = new CaptureLogger();
    const proxy = await startProxy(oneListener(redis.port, {
      telemetry: `tracing: { sampling: 100, flush_interval: 20ms, otlp: { address: 127.0.0.1, port: ${await freePort()}, timeout: 500ms } }`,
    }), { logger });
    const client = redisClient(portOf(proxy, 'redis'));
    try {
      for (let i = 0; i < 20; i++) assert.equal(await client.set(`k${i}`, 'v'), 'OK');
      let failed = 0;
      for (let i = 0; i < 200 && failed < 20; i++) {
        await new Promise((r) => setTimeout(r, 25));
        failed = metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_tracing_spans_failed_total');
      }
      assert.equal(failed, 20, 'every span of the 20 requests counted as lost');
      assert.equal(logger.lines.filter((l) => /tracing: \d+ spans not exported/.test(l.message)).length, 1, 'warned once, not per export');
    } finally {
      client.disconnect();
      await proxy.stop();
      await redis.stop();
    }
  });

  it('a FIFO (its open would block the event loop) is refused, naming the field', async () => {
    const fifo = join(mkdtempSync(join(tmpdir(), 'meltemi-fifo-')), 'log');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    await assert.rejects(startProxy(oneListener(1, { telemetry: `access_log: [ { path: ${fifo} } ]` })), /telemetry\.access_log\[0\]\.path: cannot open .* (ENXIO|not a regular file)/);
  });

  it('stdout on a pipe nobody reads for a while: no line is lost (EAGAIN waits, it does not drop)', async () => {
    const redis = await RedisServer.start();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-stdout-'));
    const file = join(dir, 'meltemi.yaml');
    // log_level info: the proxy's own logger writes to stdout too, so Node makes the pipe non-blocking.
    writeFileSync(file, `
log_level: info
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
telemetry: { access_log: [ { path: /dev/stdout, format: "LOG %REQUEST_PROPERTY(key)%" } ] }
listeners:
  - { name: redis, port: ${port}, protocol: redis, route_config: { routes: [ { route: { cluster: c } } ] } }
clusters:
  - { name: c, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
`);
    const proc = spawn(process.execPath, [MELTEMI_BIN, 'run', '--config', file, '--workers', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => { out += d.toString('latin1'); });
    for (let i = 0; i < 400; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const probe = net.connect(port, '127.0.0.1', () => { probe.destroy(); resolve(true); });
        probe.on('error', () => resolve(false));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const client = redisClient(port);
    try {
      await client.ping();
      proc.stdout!.pause(); // the pipe fills (64 KiB) and meltemi's writes meet EAGAIN
      const n = 20_000;
      // About 2 MB of lines: far more than the pipe holds, less than the 4 MiB a sink keeps waiting.
      const pad = 'x'.repeat(90);
      for (let i = 0; i < n; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => client.set(`k${i + j}-${pad}`, 'v')));
      await new Promise((r) => setTimeout(r, 500));
      proc.stdout!.resume();
      const count = () => out.split('\n').filter((l) => l.startsWith('LOG k')).length;
      for (let i = 0; i < 200 && count() < n; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(count(), n);
    } finally {
      client.disconnect();
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      await redis.stop();
    }
  });

  it('an LDS update moving the log: connections opened before keep logging to the old file, never elsewhere', async () => {
    const redis = await RedisServer.start();
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-move-'));
    const [a, b] = [join(dir, 'a.log'), join(dir, 'b.log')];
    const proxy = await startProxy(oneListener(redis.port, { listener: `access_log: [ { path: ${a}, format: "%REQUEST_PROPERTY(key)%" } ]` }));
    const early = redisClient(portOf(proxy, 'redis'));
    let late: Redis | undefined;
    try {
      await early.set('before-move', 'v');
      const l = proxy.listener('redis')!;
      l.reconfigure({ ...l.config, accessLog: [{ ...l.config.accessLog![0], path: b, field: 'access_log[0]' }] }, l.context.plugin, proxy.plugins);
      late = redisClient(portOf(proxy, 'redis'));
      await late.set('late-client', 'v');
      await early.set('early-client-after-move', 'v');
      early.disconnect(); // the old file closes with the last connection that used it
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(readFileSync(a, 'utf8').trim().split('\n'), ['before-move', 'early-client-after-move']);
    } finally {
      early.disconnect();
      late?.disconnect();
      await proxy.stop();
      await redis.stop();
    }
    assert.deepEqual(readFileSync(b, 'utf8').trim().split('\n'), ['late-client']);
  });

  it('an access log that cannot be opened refuses the start, naming the field', async () => {
    await assert.rejects(startProxy(oneListener(1, { telemetry: 'access_log: [ { path: /nonexistent-dir/a.log } ]' })), /telemetry\.access_log\[0\]\.path: cannot open \/nonexistent-dir\/a\.log for appending: ENOENT/);
  });
});

describe('telemetry config', () => {
  const listener = { name: 'l', port: 7000, protocol: 'redis', route_config: { routes: [{ route: { cluster: 'c' } }] } };
  const base = (telemetry: unknown, l: Record<string, unknown> = {}) => ({ listeners: [{ ...listener, ...l }], clusters: [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: 1 }] }], telemetry });
  const refusals: Array<[string, unknown, Record<string, unknown>, RegExp]> = [
    ['an unknown operator', { access_log: [{ format: '%NOPE%' }] }, {}, /telemetry\.access_log\[0\]\.format: %NOPE% is not a known operator/],
    ['an unterminated operator', { access_log: [{ format: '%DURATION' }] }, {}, /telemetry\.access_log\[0\]\.format: has a malformed or unterminated operator/],
    ['an argument to an operator without one', { access_log: [{ format: '%DURATION(x)%' }] }, {}, /%DURATION\(…\)% is not an operator that takes an argument/],
    ['a JSON field that is not a string', { access_log: [{ json_format: { d: 1 } }] }, {}, /telemetry\.access_log\[0\]\.json_format\.d: must be a string/],
    ['two formats', { access_log: [{ format: '%DURATION%', json: true }] }, {}, /telemetry\.access_log\[0\]: takes one of format, json_format or json/],
    ['an unknown response flag', { access_log: [{ filter: { response_flags: ['XX'] } }] }, {}, /telemetry\.access_log\[0\]\.filter\.response_flags\[0\]: must be one of/],
    ['tracing without a collector', { tracing: { sampling: 1 } }, {}, /telemetry\.tracing\.otlp: is required/],
    ['a sampling rate over 100', { tracing: { sampling: 101, otlp: { port: 4317 } } }, {}, /telemetry\.tracing\.sampling: must be between 0 and 100/],
    ['a listener access log with a bad operator', undefined, { access_log: [{ format: '%REQ()%' }] }, /listeners\[0\]\.access_log\[0\]\.format: %REQ\(\)% needs a metadata key/],
    ['an unknown traffic direction', undefined, { traffic_direction: 'sideways' }, /listeners\[0\]\.traffic_direction: must be one of: outbound, inbound/],
  ];
  for (const [what, telemetry, l, reason] of refusals) {
    it(`refuses ${what}, naming the field`, () => {
      assert.throws(() => validateConfig(base(telemetry, l), '/'), (err: Error) => { assert.match(err.message, reason); return true; });
    });
  }

  it('defaults: Istio metrics on, no access log, no tracing; relative log paths from the config\'s directory', () => {
    const c = validateConfig(base({ access_log: [{ path: 'logs/a.log' }] }), '/etc/meltemi');
    assert.equal(c.telemetry.istioMetrics, true);
    assert.equal(c.telemetry.tracing, undefined);
    assert.equal(c.telemetry.accessLog[0].path, '/etc/meltemi/logs/a.log');
    assert.equal(c.telemetry.accessLog[0].format.kind, 'text');
    assert.equal(existsSync('/etc/meltemi/logs/a.log'), false, 'validation opens no file');
  });
});
