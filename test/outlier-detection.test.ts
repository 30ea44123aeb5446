// Outlier detection against real redis-servers and a server that answers every command with an
// error (or never): an endpoint whose answers fail in a row is ejected and gets no more traffic
// until its ejection ends; timeouts and resets eject by consecutive gateway failures; when too
// few endpoints are left, ejection is ignored (panic) instead of answering "no healthy upstream".

import assert from 'node:assert/strict';
import net from 'node:net';
import type { Meltemi } from '../runtime/server';
import { UPSTREAM_LIMIT_DEFAULTS } from '../runtime/config/types';
import { StatsStore } from '../runtime/core/stats';
import { Cluster } from '../runtime/upstream/cluster';
import { useFaultBed } from './helpers/fault-bed';
import { PLUGIN_DIR } from './helpers/paths';
import { RedisServer } from './helpers/redis-server';

/** Answers each RESP command it reads with -ERR broken, and counts them. */
class BrokenRedis {
  commands = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((s) => {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    let buf = '';
    s.on('error', () => {});
    s.on('data', (d) => {
      buf += d.toString('latin1');
      // A command is an array header followed by that many bulk strings: count whole ones.
      for (;;) {
        const m = /^\*(\d+)\r\n/.exec(buf);
        if (!m) break;
        let at = m[0].length;
        let complete = true;
        for (let i = 0; i < Number(m[1]); i++) {
          const b = /^\$(\d+)\r\n/.exec(buf.slice(at));
          if (!b || buf.length < at + b[0].length + Number(b[1]) + 2) { complete = false; break; }
          at += b[0].length + Number(b[1]) + 2;
        }
        if (!complete) break;
        buf = buf.slice(at);
        this.commands++;
        s.write('-ERR broken\r\n');
      }
    });
  });

  static async start(): Promise<BrokenRedis> {
    const b = new BrokenRedis();
    await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', () => r()));
    return b;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const config = (endpoints: number[], outlier: string, action = '') => `
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: main ${action} } } ] } }
clusters:
  - { name: main, outlier_detection: ${outlier}, endpoints: [ ${endpoints.map((p) => `{ address: 127.0.0.1, port: ${p} }`).join(', ')} ] }
`;

describe('outlier ejection time', () => {
  const od = { consecutiveErrors: 1, consecutiveGatewayFailures: 0, baseEjectionMs: 1000, maxEjectionPercent: 100, intervalMs: 10_000 };
  const cluster = () => new Cluster({
    name: 'c', endpoints: [{ address: '10.0.0.1', port: 1 }, { address: '10.0.0.2', port: 1 }], lbPolicy: 'round_robin', connectTimeoutMs: 1000,
    connectionsPerEndpoint: 1, ...UPSTREAM_LIMIT_DEFAULTS, outlierDetection: od,
  }, new StatsStore());

  it('grows with each ejection in a row, and decays by one per interval back in service', () => {
    const c = cluster();
    const ep = c.endpoints[0];
    c.report(ep, 'error', 0);
    assert.equal(ep.outlierUntil, 1000, 'first ejection: base');
    c.report(ep, 'error', 1500);
    assert.equal(ep.outlierUntil, 1500 + 2000, 'again soon after: twice the base');
    c.report(ep, 'error', 3500 + 25_000); // two intervals and a half back in service: 2 - 2 = 0, then this one
    assert.equal(ep.outlierUntil, 28_500 + 1000, 'after long enough in service: base again');
  });
});

describe('outlier detection', function () {
  this.timeout(30_000);
  const bed = useFaultBed();
  let broken: BrokenRedis;
  let second: RedisServer;

  before(async () => {
    broken = await BrokenRedis.start();
    second = await RedisServer.start();
  });
  after(async () => {
    await broken?.stop();
    await second?.stop();
  });

  it('an endpoint answering errors in a row is ejected: it sees no more requests', async () => {
    const proxy: Meltemi = await bed.start(config([bed.redis.port, broken.port, second.port], '{ consecutive_5xx: 3, base_ejection_time: 30s, max_ejection_percent: 50 }'));
    const c = bed.client();
    const before = broken.commands;
    const replies: string[] = [];
    for (let i = 0; i < 60; i++) replies.push(await c.get('k').then((v) => String(v), (e: Error) => e.message));
    assert.equal(broken.commands - before, 3, 'three errors in a row, then ejected');
    assert.equal(replies.filter((r) => r === 'ERR broken').length, 3);
    assert.equal(proxy.clusters.get('main')!.stats.outlierEjections, 1);
  });

  it('timeouts in a row eject an endpoint that never answers (consecutive gateway failures)', async () => {
    const proxy = await bed.start(config([bed.hole.port, bed.redis.port], '{ consecutive_5xx: 0, consecutive_gateway_failure: 2, base_ejection_time: 30s, max_ejection_percent: 50 }',
      ', retry_policy: { retry_on: timeout, num_retries: 2, per_try_timeout: 100ms }'));
    const c = bed.client();
    for (let i = 0; i < 40; i++) assert.equal(await c.get('missing'), null);
    const stats = proxy.clusters.get('main')!.stats;
    assert.equal(stats.outlierEjections, 1);
    assert.equal(stats.rqPerTryTimeout, 2, 'two timeouts, then the silent endpoint is out');
  });

  it('with every endpoint ejected, requests still go somewhere (panic) rather than nowhere', async () => {
    const other = await BrokenRedis.start();
    try {
      const proxy = await bed.start(config([broken.port, other.port], '{ consecutive_5xx: 1, base_ejection_time: 30s, max_ejection_percent: 100 }'));
      const c = bed.client();
      const replies: string[] = [];
      for (let i = 0; i < 10; i++) replies.push(await c.get('k').then((v) => String(v), (e: Error) => e.message));
      assert.equal(proxy.clusters.get('main')!.stats.outlierEjections, 2);
      assert.deepEqual([...new Set(replies)], ['ERR broken'], 'answered by the ejected endpoints, not "no healthy upstream"');
    } finally {
      await other.stop();
    }
  });
});
