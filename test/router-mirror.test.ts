// Request mirroring against real redis-servers: the route's mirror policy sends its share of
// requests to a shadow cluster as well (±2 points over 5000), the client gets the real answer
// only, and a shadow that is down or never answers changes nothing for the real requests.

import assert from 'node:assert/strict';
import type Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { BlackHole } from './helpers/black-hole';
import { freePort } from './helpers/ports';
import { portOf, redisRouteYaml, startProxy } from './helpers/proxy';
import { redisClient, RedisServer } from './helpers/redis-server';

const config = (main: number, shadow: number, percentage: number) => redisRouteYaml(
  `cluster: main, request_mirror_policies: [ { cluster: shadow, percentage: ${percentage} } ]`,
  [`{ name: main, endpoints: [ { address: 127.0.0.1, port: ${main} } ] }`, `{ name: shadow, connect_timeout: 200ms, endpoints: [ { address: 127.0.0.1, port: ${shadow} } ] }`],
);

describe('router: request mirroring', function () {
  this.timeout(60_000);
  let main: RedisServer;
  let shadow: RedisServer;
  let proxy: Meltemi | undefined;
  let client: Redis | undefined;

  before(async () => {
    main = await RedisServer.start();
    shadow = await RedisServer.start();
  });
  afterEach(async () => {
    client?.disconnect();
    client = undefined;
    await proxy?.stop();
    proxy = undefined;
  });
  after(async () => {
    await main?.stop();
    await shadow?.stop();
  });

  const connect = (p: Meltemi) => (client = redisClient(portOf(p, 'redis')));
  const dbsize = async (s: RedisServer) => Number(/:(\d+)/.exec(await s.command('DBSIZE'))![1]);

  it('50% of 5000 writes reach the shadow (±2 points); the client sees the main cluster\'s answers', async () => {
    await main.command('FLUSHALL');
    await shadow.command('FLUSHALL');
    await shadow.command('SET probe from-shadow');
    await main.command('SET probe from-main');
    proxy = await startProxy(config(main.port, shadow.port, 50));
    const c = connect(proxy);
    const replies = await Promise.all(Array.from({ length: 5000 }, (_, i) => c.set(`k${i}`, 'v')));
    assert.ok(replies.every((r) => r === 'OK'));
    assert.equal(await c.get('probe'), 'from-main');
    await new Promise((r) => setTimeout(r, 200)); // shadows are not waited for
    const mirrored = (await dbsize(shadow)) - 1;
    assert.equal(await dbsize(main), 5001);
    const share = mirrored / 5000;
    assert.ok(Math.abs(share - 0.5) <= 0.02, `${(share * 100).toFixed(1)}% mirrored`);
    const stats = proxy.clusters.get('shadow')!.stats;
    assert.ok(Math.abs(stats.mirrored - mirrored) <= 1 && stats.mirrorFailures === 0, JSON.stringify(stats));
  });

  it('a shadow that is down, or never answers, changes nothing for the real requests', async () => {
    const dead = await freePort();
    const hole = await BlackHole.start();
    try {
      for (const port of [dead, hole.port]) {
        proxy = await startProxy(config(main.port, port, 100));
        const c = connect(proxy);
        const replies = await Promise.all(Array.from({ length: 500 }, (_, i) => c.set(`x${i}`, 'v')));
        assert.ok(replies.every((r) => r === 'OK'));
        assert.equal(await c.get('x1'), 'v');
        client!.disconnect();
        client = undefined;
        await proxy.stop();
        proxy = undefined;
      }
      assert.ok(hole.bytesReceived > 0, 'the silent shadow got its copies');
    } finally {
      await hole.stop();
    }
  });
});
