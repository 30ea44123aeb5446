// The first-party fault filter (plugins/fault, ABI 1.1) on Redis traffic to a real
// redis-server: an abort percentage holds over 2000 calls within ±2 points, with the protocol's
// error; a delay pauses matching requests for the configured time on a host timer while other
// clients' requests pass undelayed.

import assert from 'node:assert/strict';
import Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { PLUGIN_DIR } from './helpers/paths';
import { portOf, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';

describe('filter: fault on Redis', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let proxy: Meltemi | undefined;
  const clients: Redis[] = [];

  before(async () => { redis = await RedisServer.start(); });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    await proxy?.stop();
    proxy = undefined;
  });
  after(async () => { await redis?.stop(); });

  async function start(fault: string): Promise<void> {
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: redis
    port: 0
    protocol: redis
    filters: [ { name: fault, config: ${fault} } ]
    route_config: { routes: [ { route: { cluster: main } } ] }
clusters:
  - { name: main, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
`);
  }
  const client = () => {
    const c = new Redis({ port: portOf(proxy!, 'redis'), host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
    clients.push(c);
    return c;
  };

  it('abort 10 %: over 2000 calls, 10 ± 2 % get the protocol\'s error', async () => {
    await start('{ abort: { percentage: 10, kind: unspecified, message: "injected fault" } }');
    const c = client();
    let aborted = 0;
    for (let batch = 0; batch < 20; batch++) {
      const results = await Promise.all(Array.from({ length: 100 }, () => c.ping().then(() => 'ok', (e: Error) => e.message)));
      for (const r of results) {
        if (r === 'ok') continue;
        assert.match(r, /injected fault/);
        aborted++;
      }
    }
    assert.ok(Math.abs(aborted / 2000 - 0.10) <= 0.02, `${aborted} of 2000 aborted`);
  });

  it('delay: matching requests wait the configured time; other clients are not held', async () => {
    await start('{ delay: { fixedDelay: 200ms, percentage: 100, match: { attributes: { command: { exact: GET } } } } }');
    const slow = client();
    const fast = client();
    await Promise.all([slow.ping(), fast.ping()]);
    const timed = async (f: () => Promise<unknown>) => { const t0 = performance.now(); await f(); return performance.now() - t0; };
    const gets = Promise.all(Array.from({ length: 5 }, () => timed(() => slow.get('k'))));
    const sets = await Promise.all(Array.from({ length: 5 }, (_, i) => timed(() => fast.set(`k${i}`, 'v'))));
    const getTimes = (await gets).sort((a, b) => a - b);
    assert.ok(getTimes[2] >= 195, `GET p50 ${getTimes[2].toFixed(1)} ms; the delay is 200 ms`);
    assert.ok(Math.max(...sets) < 150, `SETs of another client waited ${Math.max(...sets).toFixed(1)} ms`);
  });

  it('delay then abort: the abort answers after the delay', async () => {
    await start('{ delay: { fixedDelay: 100ms }, abort: { kind: over_limit, message: late } }');
    const t0 = performance.now();
    await assert.rejects(client().get('k'), /late/);
    assert.ok(performance.now() - t0 >= 95);
  });
});
