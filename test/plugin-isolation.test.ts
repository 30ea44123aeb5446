// A plugin stuck in a loop is contained: fuel metering added at load time traps the call, that
// connection gets a local error and is closed, the instance is replaced, and every other
// connection and listener keeps serving. Also: the memory cap replaces an instance that grows
// past it.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { kvFrame, parseKv } from './helpers/kv-frames';
import { KvServer } from './helpers/kv-server';
import { PLUGIN_DIR, TEST_PLUGIN_DIR } from './helpers/paths';
import { adminGet, metricSum, portOf, RawClient, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';

describe('plugin isolation: stuck loops and memory', function () {
  this.timeout(30_000);
  let kv: KvServer;
  let redis: RedisServer;
  let proxy: Meltemi;
  const raws: RawClient[] = [];

  before(async () => {
    kv = await KvServer.start('kv');
    redis = await RedisServer.start();
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-iso-'));
    copyFileSync(join(TEST_PLUGIN_DIR, 'kv.wasm'), join(dir, 'kv.wasm'));
    copyFileSync(join(PLUGIN_DIR, 'redis.wasm'), join(dir, 'redis.wasm'));
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(dir)}, watch: false, fuel_per_call: 20000000, max_memory: 16777216 }
listeners:
  - { name: kv, port: 0, protocol: kv, route_config: { routes: [ { route: { cluster: kv } } ] } }
  - { name: redis, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: redis } } ] } }
clusters:
  - { name: kv, endpoints: [ { address: 127.0.0.1, port: ${kv.port} } ] }
  - { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
`);
  });

  after(async () => {
    for (const r of raws) r.destroy();
    await proxy?.stop();
    await kv?.stop();
    await redis?.stop();
  });

  const raw = () => {
    const r = new RawClient(portOf(proxy, 'kv'));
    raws.push(r);
    return r;
  };

  it('a call stuck in a loop is trapped: local error, that connection closed, others served', async () => {
    const healthy = raw();
    healthy.write(kvFrame(0, 1n, [['method', 'm']]));
    await healthy.until(() => healthy.received.length > 0);
    const before = (await adminGet(proxy.admin!.port, '/metrics')).body;
    const stuck = raw();
    const t0 = Date.now();
    stuck.write(kvFrame(0, 2n, [['method', 'm'], ['spin', '']]));
    await stuck.waitClosed(10_000);
    const contained = Date.now() - t0;
    const reply = parseKv(stuck.received);
    assert.equal(reply.type, 8);
    assert.match(reply.pairs.find(([k]) => k === 'message')![1], /exceeded its budget of 20000000 instructions in one call \(stuck\?\)/);
    assert.ok(contained < 5000, `contained in ${contained} ms`);
    const before2 = healthy.received.length;
    healthy.write(kvFrame(0, 3n, [['method', 'm']]));
    await healthy.until(() => healthy.received.length > before2);
    const c = new Redis({ port: portOf(proxy, 'redis'), host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false });
    assert.equal(await c.ping(), 'PONG', 'another listener never noticed');
    c.disconnect();
    const after = (await adminGet(proxy.admin!.port, '/metrics')).body;
    assert.equal(metricSum(after, 'meltemi_plugin_traps_total', { plugin: 'kv' }) - metricSum(before, 'meltemi_plugin_traps_total', { plugin: 'kv' }), 1);
    assert.equal(metricSum(after, 'meltemi_plugin_instance_recycles_total', { plugin: 'kv' }) - metricSum(before, 'meltemi_plugin_instance_recycles_total', { plugin: 'kv' }), 1);
  });

  it('guest memory cannot grow past plugins.max_memory: the grow fails inside the guest, only that connection closes', async () => {
    const healthy = raw();
    healthy.write(kvFrame(0, 1n, [['method', 'm']]));
    await healthy.until(() => healthy.received.length > 0);
    const recycles = proxy.listener('kv')!.context.plugin.recycles;
    const greedy = raw();
    greedy.write(kvFrame(0, 2n, [['method', 'm'], ['grow', '32768']])); // 32 MiB, cap is 16 MiB
    await greedy.waitClosed(5000);
    assert.match(parseKv(greedy.received).pairs.find(([k]) => k === 'message')![1], /trap: unreachable \(guest memory \d+ of its 16777216-byte cap/);
    assert.equal(proxy.listener('kv')!.context.plugin.recycles, recycles + 1);
    const n = healthy.received.length;
    healthy.write(kvFrame(0, 3n, [['method', 'm']]));
    await healthy.until(() => healthy.received.length > n);
  });
});
