// Retries under a real fault: one of three redis-servers (then of three Thrift servers, each
// in its own process) is killed with SIGKILL while clients keep calling through meltemi. The
// idempotent requests in flight on it (Redis reads, which the codec marks; Thrift calls of a
// method whose route says `idempotent: true`) fail with a reset and are retried on the others;
// new connections to it fail and are retried too: none fails. Writes in flight on it are not
// retried (they may have been applied), and say why.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Meltemi } from '../runtime/server';
import { PLUGIN_DIR } from './helpers/paths';
import { portOf, redisRouteYaml, startProxy } from './helpers/proxy';
import { redisClient, RedisServer } from './helpers/redis-server';
import { services, thriftClient } from './helpers/thrift-peers';

/** Drives `call` from every client until told to stop; counts what succeeded and what failed. */
function load(clients: number, call: (client: number) => Promise<boolean>) {
  let stop = false;
  const tally = { ok: 0, failures: [] as string[] };
  const loops = Array.from({ length: clients }, async (_, c) => {
    while (!stop) {
      // 16 calls at once keep requests in flight on every upstream connection when the kill lands.
      const batch = await Promise.allSettled(Array.from({ length: 16 }, () => call(c)));
      for (const r of batch) {
        if (r.status === 'fulfilled' && r.value) tally.ok++;
        else tally.failures.push(r.status === 'rejected' ? String((r.reason as Error).message ?? r.reason) : 'wrong answer');
      }
    }
  });
  return { tally, stop: async () => { stop = true; await Promise.all(loops); } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    const run = load(clients.length, async (c) => (await clients[c].get('shared')) === 'value');
    await sleep(400);
    const before = run.tally.ok;
    process.kill(servers[1].pid, 'SIGKILL');
    await sleep(800);
    await run.stop();
    for (const c of clients) c.disconnect();
    const stats = proxy.clusters.get('main')!.stats;
    assert.deepEqual(run.tally.failures.slice(0, 3), [], `${run.tally.failures.length} failed reads; stats ${JSON.stringify(stats)}`);
    assert.ok(run.tally.ok > before + 100, `reads went on after the kill (${before} -> ${run.tally.ok})`);
    assert.ok(stats.rqRetry > 0 && stats.rqRetrySuccess > 0, `the kill was met by retries: ${JSON.stringify(stats)}`);
  });
});

describe('router: Thrift retries when an endpoint is killed under load', function () {
  this.timeout(30_000);
  const servers: ChildProcess[] = [];
  let proxy: Meltemi;

  before(async () => {
    services(); // generate the Thrift code once, before the server processes need it
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const child = spawn(process.execPath, [join(__dirname, 'bench', 'thrift-server.js'), `s${i}`], { stdio: ['ignore', 'pipe', 'inherit'] });
      servers.push(child);
      ports.push(await new Promise<number>((resolve) => child.stdout!.once('data', (d) => resolve(Number(String(d).trim())))));
    }
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - name: thrift
    port: 0
    protocol: thrift
    route_config:
      routes:
        - match: { metadata: [ { name: method, exact_match: who } ] }
          route: { cluster: main, timeout: 2s, retry_policy: { retry_on: "reset,connect-failure", num_retries: 2, idempotent: true } }
        - route: { cluster: main, timeout: 2s, retry_policy: { retry_on: "reset,connect-failure", num_retries: 2 } }
clusters:
  - { name: main, connect_timeout: 250ms, endpoints: [ ${ports.map((p) => `{ address: 127.0.0.1, port: ${p} }`).join(', ')} ] }
`);
  });
  after(async () => {
    await proxy?.stop();
    for (const s of servers) s.kill('SIGKILL');
  });

  it('kill -9 of one of 3 endpoints: 0 failed calls of the idempotent method', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => thriftClient(portOf(proxy, 'thrift'), { transport: 'framed', protocol: 'binary' })));
    const answered = new Set<string>();
    const run = load(clients.length, async (c) => {
      const name = String(await clients[c].echo.who());
      answered.add(name);
      return /^s[0-2]$/.test(name);
    });
    await sleep(400);
    const before = run.tally.ok;
    servers[1].kill('SIGKILL');
    await sleep(800);
    await run.stop();
    for (const c of clients) c.close();
    const stats = proxy.clusters.get('main')!.stats;
    assert.deepEqual([...answered].sort(), ['s0', 's1', 's2'], 'every endpoint served before the kill');
    assert.deepEqual(run.tally.failures.slice(0, 3), [], `${run.tally.failures.length} failed calls; stats ${JSON.stringify(stats)}`);
    assert.ok(run.tally.ok > before + 100, `calls went on after the kill (${before} -> ${run.tally.ok})`);
    assert.ok(stats.rqRetry > 0 && stats.rqRetrySuccess > 0, `the kill was met by retries: ${JSON.stringify(stats)}`);
  });
});
