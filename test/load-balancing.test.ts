// Load-balancing policies: the ring hash keeps every key on its endpoint while the endpoints
// stay, moves about 1/(N+1) of them when one is added and only the removed one's when one goes;
// least request (power of two choices) prefers the endpoint with fewer active requests; peak EWMA
// prefers the faster one and tries a slow one again once its estimate has decayed; against three
// real redis-servers, a route's hash_policy on the key sends every key to one server; and with one
// endpoint of three 50 ms slower, peak EWMA keeps the p99 with the healthy ones.

import assert from 'node:assert/strict';
import net from 'node:net';
import type Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { Endpoint } from '../runtime/upstream/cluster';
import { LeastRequest } from '../runtime/upstream/load-balancer';
import { costOf, observeRtt, PeakEwma } from '../runtime/upstream/load-balancer-peak-ewma';
import { hash32, RingHash } from '../runtime/upstream/load-balancer-ring-hash';
import { PLUGIN_DIR } from './helpers/paths';
import { portOf, redisRouteYaml, startProxy } from './helpers/proxy';
import { redisClient, RedisServer } from './helpers/redis-server';

const endpoints = (n: number, from = 0) => Array.from({ length: n }, (_, i) => new Endpoint('10.0.0.1', 7000 + from + i));
const KEYS = Array.from({ length: 20_000 }, (_, i) => hash32(`user:${i}`));
const owners = (ring: RingHash) => KEYS.map((h) => ring.pick({ now: 0, hash: h })!.label);

describe('ring hash', () => {
  for (const n of [3, 5, 10]) {
    it(`N=${n}: adding one endpoint moves at most 1.2/(N+1) of the keys, all to the new one`, () => {
      const eps = endpoints(n);
      const before = owners(new RingHash(eps));
      assert.deepEqual(owners(new RingHash(endpoints(n))), before, 'the same endpoints: every key stays');
      const grown = [...eps, ...endpoints(1, n)];
      const after = owners(new RingHash(grown));
      const moved = after.filter((o, i) => o !== before[i]);
      assert.ok(moved.every((o) => o === grown[n].label), 'keys move only to the new endpoint');
      const share = moved.length / KEYS.length;
      assert.ok(share <= 1.2 / (n + 1) && share >= 0.6 / (n + 1), `moved ${(share * 100).toFixed(1)}% (1/(N+1) = ${(100 / (n + 1)).toFixed(1)}%)`);
    });
  }

  it('an ejected endpoint\'s keys go to others; the rest stay; they come back when it does', () => {
    const eps = endpoints(4);
    const ring = new RingHash(eps);
    const before = owners(ring);
    eps[2].ejectedUntil = 1000;
    const during = KEYS.map((h) => ring.pick({ now: 0, hash: h })!.label);
    assert.ok(during.every((o, i) => o !== eps[2].label && (before[i] === eps[2].label || o === before[i])));
    assert.deepEqual(KEYS.map((h) => ring.pick({ now: 2000, hash: h })!.label), before);
  });
});

describe('least request', () => {
  it('draws the endpoint with fewer active requests whenever it is one of the two', () => {
    const eps = endpoints(3);
    eps[1].active = 100;
    eps[2].active = 100;
    const lb = new LeastRequest(eps);
    let idle = 0;
    for (let i = 0; i < 3000; i++) if (lb.pick({ now: 0 }) === eps[0]) idle++;
    // Two different endpoints drawn at random include eps[0] 2/3 of the time (about 2000 ± 26).
    assert.ok(idle / 3000 > 0.6, `${idle} of 3000 to the idle endpoint`);
  });
});

describe('peak EWMA', () => {
  const DECAY = 10_000;
  const picks = (lb: PeakEwma, now: number, n = 3000) => {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const label = lb.pick({ now })!.label;
      counts.set(label, (counts.get(label) ?? 0) + 1);
    }
    return counts;
  };

  it('the estimate jumps to a slower answer and comes down as an average of faster ones', () => {
    const [ep] = endpoints(1);
    observeRtt(ep, 1, 0, DECAY);
    observeRtt(ep, 30, 1, DECAY);
    assert.equal(ep.rttMs, 30, 'the peak is taken at once');
    observeRtt(ep, 1, 2, DECAY);
    assert.ok(ep.rttMs > 29, 'one fast answer 1 ms later barely moves it');
    observeRtt(ep, 1, 2 + DECAY, DECAY);
    assert.ok(Math.abs(ep.rttMs - (29.99 / Math.E + 1 * (1 - 1 / Math.E))) < 0.1, `after one decay time: ${ep.rttMs}`);
  });

  it('costs latency × (in flight + 1); an endpoint never heard from is free when idle, dear when busy', () => {
    const [a, b] = endpoints(2);
    observeRtt(a, 2, 0, DECAY);
    a.active = 3;
    assert.equal(costOf(a, 0, DECAY), 8);
    assert.ok(Math.abs(costOf(a, DECAY, DECAY) - 8 / Math.E) < 1e-9, 'decays while no answer comes');
    assert.equal(costOf(b, 0, DECAY), 0);
    b.active = 1;
    assert.ok(costOf(b, 0, DECAY) > 1e5);
  });

  it('a slow endpoint gets nothing while its estimate is high, and is tried again once it decayed', () => {
    const eps = endpoints(3);
    for (const [ep, rtt] of [[eps[0], 0.2], [eps[1], 0.2], [eps[2], 25]] as const) observeRtt(ep, rtt, 0, DECAY);
    eps[0].active = eps[1].active = 4;
    const lb = new PeakEwma(eps, DECAY);
    assert.equal(picks(lb, 1).get(eps[2].label) ?? 0, 0, 'fresh: 25 ms against 0.2 ms × 5');
    // 6 decay times on, the fast ones still answering: the slow one's 25 ms has come down to
    // 0.06 ms, below the busy endpoints' 0.2 ms × 5.
    for (const ep of eps.slice(0, 2)) observeRtt(ep, 0.2, 6 * DECAY, DECAY);
    assert.ok((picks(lb, 6 * DECAY).get(eps[2].label) ?? 0) > 1000);
  });

  it('skips unhealthy endpoints and takes the retry\'s previous one only when nothing else is left', () => {
    const eps = endpoints(3);
    eps[0].ejectedUntil = eps[1].ejectedUntil = 1000;
    const lb = new PeakEwma(eps, DECAY);
    assert.deepEqual([...picks(lb, 0, 200).keys()], [eps[2].label]);
    assert.equal(lb.pick({ now: 0, avoid: eps[2] }), eps[2]);
    eps[2].ejectedUntil = 1000;
    assert.equal(lb.pick({ now: 0 }), undefined);
  });
});

describe('consistent hashing through meltemi, on three redis-servers', function () {
  this.timeout(30_000);
  const servers: RedisServer[] = [];
  let proxy: Meltemi;
  let client: Redis;

  before(async () => {
    for (let i = 0; i < 3; i++) servers.push(await RedisServer.start());
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: shards, hash_policy: [ key ] } } ] } }
clusters:
  - { name: shards, lb_policy: ring_hash, endpoints: [ ${servers.map((s) => `{ address: 127.0.0.1, port: ${s.port} }`).join(', ')} ] }
`);
    client = redisClient(portOf(proxy, 'redis'));
  });
  after(async () => {
    client?.disconnect();
    await proxy?.stop();
    for (const s of servers) await s.stop();
  });

  it('every key lives on exactly one server, and reads through meltemi find it (100% sticky)', async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `user:${i}`);
    await Promise.all(keys.map((k) => client.set(k, k)));
    const where = await Promise.all(servers.map(async (s) => {
      const direct = redisClient(s.port);
      const found = await direct.keys('user:*');
      direct.disconnect();
      return found;
    }));
    assert.equal(where.reduce((n, w) => n + w.length, 0), keys.length, 'no key written twice');
    assert.ok(where.every((w) => w.length > 50), `spread: ${where.map((w) => w.length).join(', ')}`);
    const read = await Promise.all(keys.map((k) => client.get(k)));
    assert.deepEqual(read, keys);
  });
});

/** A relay to a redis-server that holds every answer `delayMs`, and counts the PONGs it relays. */
class SlowRelay {
  pongs = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  constructor(target: number, delayMs: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => { this.sockets.delete(s); client.destroy(); upstream.destroy(); });
      }
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d: Buffer) => {
        for (const b of d) if (b === 10) this.pongs++;
        setTimeout(() => client.write(d), delayMs);
      });
    });
  }

  async listen(): Promise<number> {
    if (!this.server.listening) await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

describe('least request through meltemi, with one slow endpoint of three', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let fast: SlowRelay;
  let slow: SlowRelay;
  let proxy: Meltemi | undefined;

  before(async () => {
    redis = await RedisServer.start();
    fast = new SlowRelay(redis.port, 0);
    // 50 ms: well above what a stall of this shared event loop (clients, relays and proxy in one
    // process) adds to a healthy endpoint's answers, which peak EWMA takes at once.
    slow = new SlowRelay(redis.port, 50);
  });
  after(async () => {
    await proxy?.stop();
    await fast?.stop();
    await slow?.stop();
    await redis?.stop();
  });

  // Least request balances requests in flight, not latency: the slow endpoint still gets what
  // its in-flight share allows (about 2% here, where round robin gives it a third), enough to set
  // the p99. Peak EWMA balances latency as well.
  /** 16 clients ping for 1.5 s through a cluster of `policy`: requests done, the slow one's share, p99 (ms). */
  async function drive(policy: string): Promise<{ done: number; slowShare: number; p99: number }> {
    const [fastPort, slowPort] = [await fast.listen(), await slow.listen()];
    proxy = await startProxy(redisRouteYaml('cluster: main', [
      `{ name: main, ${policy}, endpoints: [ { address: 127.0.0.1, port: ${redis.port} }, { address: 127.0.0.1, port: ${fastPort} }, { address: 127.0.0.1, port: ${slowPort} } ] }`,
    ]));
    slow.pongs = 0;
    const clients = Array.from({ length: 16 }, () => redisClient(portOf(proxy!, 'redis')));
    const latencies: number[] = [];
    // The first 300 ms are the balancer learning the endpoints (each is tried before its latency
    // is known): a fixed number of requests, whose share would depend on how fast this machine
    // is that day. Shares and the p99 are of the steady state after it.
    const warm = performance.now() + 300;
    let pongsAtWarm: number | undefined;
    const until = warm + 1500;
    await Promise.all(clients.map(async (c) => {
      while (performance.now() < until) {
        const t0 = performance.now();
        assert.equal(await c.ping(), 'PONG');
        if (t0 < warm) continue;
        pongsAtWarm ??= slow.pongs;
        latencies.push(performance.now() - t0);
      }
    }));
    for (const c of clients) c.disconnect();
    await proxy.stop();
    proxy = undefined;
    latencies.sort((a, b) => a - b);
    return { done: latencies.length, slowShare: (slow.pongs - (pongsAtWarm ?? 0)) / latencies.length, p99: latencies[Math.floor(latencies.length * 0.99)] };
  }

  it('least_request, choice_count 3: the slow endpoint gets a small share (under 5%; round robin would give it 33%)', async () => {
    const { done, slowShare } = await drive('lb_policy: least_request, least_request: { choice_count: 3 }');
    assert.ok(done > 500, `${done} requests`);
    assert.ok(slowShare < 0.05, `${(slowShare * 100).toFixed(2)}% of ${done} went to the slow endpoint`);
  });

  // The p99 stays the healthy endpoints' when under 1% of requests reach the slow one: its 50 ms
  // then falls beyond the 99th percentile.
  it('peak_ewma: under 1% reach the slow endpoint, and the p99 is below its delay', async () => {
    const { done, slowShare, p99 } = await drive('lb_policy: peak_ewma');
    assert.ok(done > 500, `${done} requests`);
    assert.ok(slowShare < 0.01, `${(slowShare * 100).toFixed(2)}% of ${done} went to the slow endpoint`);
    assert.ok(p99 < 25, `p99 ${p99.toFixed(2)} ms`);
  });
});
