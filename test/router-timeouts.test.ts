// Timeouts and retries in the router, against real peers and real faults: an upstream that
// accepts and never answers (Redis, order correlation) and a Dubbo provider that leaves one call
// unanswered (request-id correlation). Every request is answered within its timeout (+ the
// deadline sweep's resolution); idempotent reads are retried onto a healthy endpoint and all
// succeed; writes are not retried; other clients sharing the upstream connection are unaffected.

import assert from 'node:assert/strict';
import type { Meltemi } from '../runtime/server';
import { useFaultBed } from './helpers/fault-bed';
import { startThriftServer, thriftClient, type ThriftServer } from './helpers/thrift-peers';
import { BlackHole } from './helpers/black-hole';
import { DubboConsumer, DubboProvider, sayHello } from './helpers/dubbo-peers';
import { PLUGIN_DIR } from './helpers/paths';
import { portOf, startProxy } from './helpers/proxy';
import { freePort } from './helpers/ports';

/** The deadline sweep's tick plus this machine's scheduling: an answer comes this soon after its deadline. */
const SLACK_MS = 50;


async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: Error }> {
  const t0 = performance.now();
  try {
    const value = await p;
    return { ms: performance.now() - t0, value };
  } catch (error) {
    return { ms: performance.now() - t0, error: error as Error };
  }
}

const redisConfig = (endpoints: number[], action: string, cluster = '') => `
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - name: redis
    port: 0
    protocol: redis
    route_config: { routes: [ { route: { cluster: main, ${action} } } ] }
clusters:
  - { name: main, connect_timeout: 200ms, ${cluster} endpoints: [ ${endpoints.map((p) => `{ address: 127.0.0.1, port: ${p} }`).join(', ')} ] }
`;

describe('router: timeouts and retries on Redis (order correlation)', function () {
  this.timeout(30_000);
  const bed = useFaultBed();

  it('an upstream that never answers: every request of every client gets an error within the timeout', async () => {
    const proxy = await bed.start(redisConfig([bed.hole.port], 'timeout: 300ms'));
    const clients = Array.from({ length: 10 }, () => bed.client());
    const gets = clients.map((c, i) => timed(c.get(`k${i}`)));
    const sets = clients.map((c, i) => timed(c.set(`k${i}`, 'v')));
    // The first timeout retires the shared connection (order correlation): reads behind it are
    // sent again (and time out in turn); writes behind it are answered at once, never resent.
    for (const r of await Promise.all(gets)) {
      assert.match(r.error?.message ?? 'answered', /timed out after 300 ms/);
      assert.ok(r.ms >= 290 && r.ms <= 300 + SLACK_MS, `answered after ${r.ms.toFixed(0)} ms`);
    }
    for (const r of await Promise.all(sets)) {
      assert.match(r.error?.message ?? 'answered', /timed out after 300 ms|retired: a request on it timed out/);
      assert.ok(r.ms <= 300 + SLACK_MS, `answered after ${r.ms.toFixed(0)} ms`);
    }
    const stats = proxy.clusters.get('main')!.stats;
    assert.ok(stats.rqTimeout >= 10 && stats.connectionsRetired >= 1, JSON.stringify(stats));
    assert.ok(bed.hole.bytesReceived > 0, 'the requests reached the upstream');
    assert.equal(stats.rqActive, 0);
  });

  const RETRY = 'timeout: 3s, retry_policy: { retry_on: "timeout,reset,connect-failure", num_retries: 3, per_try_timeout: 150ms }';

  it('reads stuck on a silent endpoint are retried on a healthy one and all succeed; writes are not retried', async () => {
    // Every request on the silent endpoint fails in one burst: half of all the requests at the
    // peak. A budget of 100% lets all of them be retried whatever the timing (next test: a small one).
    const proxy = await bed.start(redisConfig([bed.hole.port, bed.redis.port], RETRY, 'retry_budget: { budget_percent: 100 },'));
    await bed.redis.command('SET shared value');
    const c = bed.client();
    const reads = await Promise.all(Array.from({ length: 40 }, () => timed(c.get('shared'))));
    for (const r of reads) assert.equal(r.value, 'value', r.error?.message);
    const writes = await Promise.all(Array.from({ length: 20 }, (_, i) => timed(c.set(`w${i}`, 'x'))));
    const failed = writes.filter((w) => w.error);
    assert.ok(failed.length > 0 && failed.length < 20, `round robin sends some writes to the silent endpoint (${failed.length} failed)`);
    // A write on the silent endpoint times out itself, or is answered when another's timeout retires its connection.
    for (const w of failed) assert.match(w.error!.message, /try timed out after 150 ms|retired: a request on it timed out/);
    const stats = proxy.clusters.get('main')!.stats;
    assert.ok(stats.rqPerTryTimeout > 0 && stats.rqRetry > 0 && stats.rqRetrySuccess > 0, JSON.stringify(stats));
    assert.ok(stats.connectionsRetired > 0, 'a connection whose request timed out (order correlation) is retired');
    assert.equal(stats.rqActive, 0);
    assert.equal(stats.retriesActive, 0);
  });

  it('the retry budget caps a burst of retries at its share of the active requests', async () => {
    const proxy = await bed.start(redisConfig([bed.hole.port, bed.redis.port], RETRY, 'retry_budget: { budget_percent: 25, min_retry_concurrency: 2 },'));
    const c = bed.client();
    const reads = await Promise.all(Array.from({ length: 40 }, () => timed(c.get('shared'))));
    const failed = reads.filter((r) => r.error);
    const stats = proxy.clusters.get('main')!.stats;
    // 20 of 40 reads stall on the silent endpoint: 25% of the 40 active at the peak may be retried.
    assert.equal(stats.rqRetryOverflow, failed.length);
    assert.ok(failed.length >= 5 && failed.length <= 15, `${failed.length} refused by the budget`);
    for (const f of failed) assert.match(f.error!.message, /try timed out after 150 ms/);
  });

  it('a blocking command waits as long as it says, whatever the route timeout (no item lost)', async () => {
    await bed.start(redisConfig([bed.redis.port], 'timeout: 200ms'));
    const c = bed.client();
    const t0 = performance.now();
    assert.equal(await c.blpop('empty-queue', 1), null, 'BLPOP 1 answers nil after its own second');
    assert.ok(performance.now() - t0 >= 900, 'not cut off at 200 ms');
    const waiting = c.blpop('queue', 5);
    await new Promise((r) => setTimeout(r, 400)); // past the route timeout
    await bed.redis.command('RPUSH queue item');
    assert.deepEqual(await waiting, ['queue', 'item']);
  });

  it('a client whose own upstream connection closes is told and closed, not moved to a fresh one in another database', async () => {
    await bed.start(redisConfig([bed.redis.port], 'timeout: 2s'));
    const c = bed.client();
    assert.equal(await c.select(1), 'OK');
    assert.equal(await c.set('mine', 'db1'), 'OK');
    // Kill the pinned connection (the one in db 1) from the server side.
    const list = await bed.redis.command('CLIENT LIST');
    const id = /id=(\d+) [^\n]*db=1 /.exec(list)?.[1];
    assert.ok(id, list);
    await bed.redis.command(`CLIENT KILL ID ${id}`);
    await new Promise((r) => setTimeout(r, 100));
    const after = await c.get('mine').catch((e: Error) => e.message);
    assert.match(String(after), /own upstream connection closed; what it set there \(SELECT, MULTI …\) is gone|closed before responding|Connection is closed/);
  });

  it('a refused endpoint (connect failure) is retried for reads', async () => {
    await bed.start(redisConfig([await freePort(), bed.redis.port], 'retry_policy: { retry_on: connect-failure, num_retries: 2 }'));
    const c = bed.client();
    const reads = await Promise.all(Array.from({ length: 20 }, () => timed(c.get('shared'))));
    for (const r of reads) assert.equal(r.value, 'value', r.error?.message);
  });
});

describe('router: timeouts on Dubbo (request-id correlation)', function () {
  this.timeout(30_000);
  let provider: DubboProvider;
  let proxy: Meltemi;

  before(async () => {
    provider = await DubboProvider.start('p', async (call) => {
      const name = String(call.args[0]);
      if (name === 'hang') await new Promise(() => {});
      if (name === 'late') await new Promise((r) => setTimeout(r, 500));
      return { value: `hello ${name}` };
    });
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: dubbo, port: 0, protocol: dubbo, route_config: { routes: [ { route: { cluster: p, timeout: 250ms } } ] } }
clusters:
  - { name: p, endpoints: [ { address: 127.0.0.1, port: ${provider.port} } ] }
`);
  });
  after(async () => {
    await proxy?.stop();
    await provider?.stop();
  });

  it('a call left unanswered times out; other clients on the same upstream connection are answered meanwhile', async () => {
    const a = await DubboConsumer.connect(portOf(proxy, 'dubbo'));
    const b = await DubboConsumer.connect(portOf(proxy, 'dubbo'));
    const hung = timed(a.invoke(sayHello('hang')));
    const others = await Promise.all(Array.from({ length: 30 }, (_, i) => b.invoke(sayHello(`n${i}`))));
    for (const [i, r] of others.entries()) assert.equal(r.value, `hello n${i}`);
    const h = await hung;
    assert.ok(h.value && h.value.status !== 20, `the hung call gets an error reply: ${JSON.stringify(h.value)}`);
    assert.match(String(h.value.error ?? h.value.exception), /timed out after 250 ms/);
    assert.ok(h.ms <= 250 + SLACK_MS, `answered after ${h.ms.toFixed(0)} ms`);
    const stats = proxy.clusters.get('p')!.stats;
    assert.equal(stats.connectionsRetired, 0, 'by id, a timeout frees its id and keeps the connection');
    a.close();
    b.close();
  });

  it('a late response is dropped and the connection keeps serving', async () => {
    const c = await DubboConsumer.connect(portOf(proxy, 'dubbo'));
    const stats = proxy.clusters.get('p')!.stats;
    const opened = stats.connectionsTotal;
    const late = await c.invoke(sayHello('late'));
    assert.match(String(late.error ?? late.exception), /timed out/);
    await new Promise((r) => setTimeout(r, 400)); // the provider answers the late call meanwhile
    const next = await c.invoke(sayHello('after'));
    assert.equal(next.value, 'hello after');
    assert.equal(stats.connectionsTotal, opened, 'no new upstream connection: the late answer did not break it');
    c.close();
  });
});

describe('router: timeouts on Thrift (seqid renumbering)', function () {
  this.timeout(30_000);
  let hole: BlackHole;
  let server: ThriftServer;
  let proxy: Meltemi;

  before(async () => {
    hole = await BlackHole.start();
    server = await startThriftServer('v1', { transport: 'framed', protocol: 'binary' });
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - name: thrift
    port: 0
    protocol: thrift
    route_config:
      routes:
        - { match: { metadata: [ { name: method, exact_match: who } ] }, route: { cluster: silent, timeout: 250ms } }
        - { route: { cluster: live, timeout: 250ms } }
clusters:
  - { name: silent, endpoints: [ { address: 127.0.0.1, port: ${hole.port} } ] }
  - { name: live, endpoints: [ { address: 127.0.0.1, port: ${server.port} } ] }
`);
  });
  after(async () => {
    await proxy?.stop();
    await server?.stop();
    await hole?.stop();
  });

  it('a call to a silent upstream gets the codec\'s exception within its timeout; calls elsewhere on the same client go on', async () => {
    const { echo, close } = await thriftClient(portOf(proxy, 'thrift'), { transport: 'framed', protocol: 'binary' });
    try {
      const t0 = performance.now();
      const hung = echo.who().then(() => 'answered', (e: Error) => e.message);
      const other = await echo.echo('hi', {}, [], []);
      assert.ok(other, 'a call behind it on the same connection is answered');
      const message = await hung;
      assert.match(String(message), /timed out after 250 ms/);
      assert.ok(performance.now() - t0 <= 250 + SLACK_MS);
    } finally {
      close();
    }
  });
});
