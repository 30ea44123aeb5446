// Retries under a real fault: one of three redis-servers is killed with SIGKILL while clients
// keep reading through meltemi. The reads in flight on it fail with a reset and are retried on
// the others; new connections to it fail and are retried too: no read fails. Writes in flight
// on it are not retried (they may have been applied), and say why.

import assert from 'node:assert/strict';
import type { Meltemi } from '../runtime/server';
import { portOf, redisRouteYaml, startProxy } from './helpers/proxy';
import { redisClient, RedisServer } from './helpers/redis-server';

describe('router: retries when an endpoint is killed under load', function () {
  this.timeout(30_000);
  const servers: RedisServer[] = [];
  let proxy: Meltemi;

  before(async () => {
    for (let i = 0; i < 3; i++) {
      const s = await RedisServer.start();
      await s.command('SET shared value');
      servers.push(s);
    }
    proxy = await startProxy(redisRouteYaml(
      'cluster: main, timeout: 2s, retry_policy: { retry_on: "reset,connect-failure", num_retries: 2 }',
      [`{ name: main, connect_timeout: 250ms, endpoints: [ ${servers.map((s) => `{ address: 127.0.0.1, port: ${s.port} }`).join(', ')} ] }`],
    ));
  });
  after(async () => {
    await proxy?.stop();
    for (const s of servers) await s.stop();
  });

  it('kill -9 of one of 3 endpoints: 0 failed reads', async () => {
    const clients = Array.from({ length: 8 }, () => redisClient(portOf(proxy, 'redis')));
    let stop = false;
    let reads = 0;
    const failures: string[] = [];
    const loops = clients.map(async (c) => {
      while (!stop) {
        // A pipeline of 16 keeps requests in flight on every upstream connection when the kill lands.
        const batch = await Promise.allSettled(Array.from({ length: 16 }, () => c.get('shared')));
        for (const r of batch) {
          if (r.status === 'fulfilled' && r.value === 'value') reads++;
          else failures.push(r.status === 'rejected' ? (r.reason as Error).message : String(r.value));
        }
      }
    });
    await new Promise((r) => setTimeout(r, 400));
    const before = reads;
    process.kill(servers[1].pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 800));
    stop = true;
    await Promise.all(loops);
    for (const c of clients) c.disconnect();
    const stats = proxy.clusters.get('main')!.stats;
    assert.deepEqual(failures.slice(0, 3), [], `${failures.length} failed reads; stats ${JSON.stringify(stats)}`);
    assert.ok(reads > before + 100, `reads went on after the kill (${before} -> ${reads})`);
    assert.ok(stats.rqRetry > 0 && stats.rqRetrySuccess > 0, `the kill was met by retries: ${JSON.stringify(stats)}`);
  });
});
