// The first-party local-ratelimit filter (plugins/local-ratelimit, AssemblyScript, ABI 1.1) on
// Redis traffic through meltemi to a real redis-server: a client at twice the limit sees the
// share the buckets refuse rejected with the protocol's error; conditions pick buckets by
// metadata; a config the filter refuses, or a filter that is not there, stops the proxy with
// the field named.

import assert from 'node:assert/strict';
import Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { PLUGIN_DIR } from './helpers/paths';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';

const config = (port: number, filters: string) => `
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: redis
    port: 0
    protocol: redis
    filters: ${filters}
    route_config: { routes: [ { route: { cluster: main } } ] }
clusters:
  - { name: main, endpoints: [ { address: 127.0.0.1, port: ${port} } ] }
`;

describe('filter: local-ratelimit on Redis', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let proxy: Meltemi | undefined;
  let client: Redis | undefined;

  before(async () => { redis = await RedisServer.start(); });
  afterEach(async () => {
    client?.disconnect();
    client = undefined;
    await proxy?.stop();
    proxy = undefined;
  });
  after(async () => { await redis?.stop(); });

  async function start(filters: string): Promise<Redis> {
    proxy = await startProxy(config(redis.port, filters));
    client = new Redis({ port: portOf(proxy, 'redis'), host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
    return client;
  }

  it('a client at twice the limit gets the refused share as the protocol\'s error (±5 points)', async () => {
    // 100 requests/s: 10 tokens every 100 ms, a burst of 10.
    const c = await start('[ { name: local-ratelimit, config: { tokenBucket: { maxTokens: 10, tokensPerFill: 10, fillInterval: 100ms } } } ]');
    const sent: Array<Promise<boolean>> = [];
    const t0 = Date.now();
    // 200 requests/s for 2 s, in steps of 10 every 50 ms.
    for (let step = 0; step < 40; step++) {
      for (let i = 0; i < 10; i++) sent.push(c.ping().then(() => true, (err: Error) => { assert.match(err.message, /rate limited/); return false; }));
      await new Promise((r) => setTimeout(r, 50));
    }
    const results = await Promise.all(sent);
    const elapsed = Date.now() - t0;
    const allowed = results.filter(Boolean).length;
    const expectedAllowed = 10 + Math.floor(elapsed / 100) * 10;
    const share = (allowed - expectedAllowed) / results.length;
    assert.ok(Math.abs(share) <= 0.05, `allowed ${allowed} of ${results.length} in ${elapsed} ms; the buckets allow about ${expectedAllowed}`);
    assert.ok(allowed < results.length * 0.65 && allowed > results.length * 0.35, `about half allowed: ${allowed}/${results.length}`);
  });

  it('conditions pick a bucket by metadata: GET is limited, SET is not', async () => {
    const c = await start(`[ { name: local-ratelimit, config: { conditions: [ { match: { attributes: { command: { exact: GET } } }, tokenBucket: { maxTokens: 2, tokensPerFill: 1, fillInterval: 60s } } ] } } ]`);
    const gets = await Promise.all([1, 2, 3, 4].map(() => c.get('k').then(() => 'ok', (e: Error) => e.message)));
    assert.deepEqual(gets.map((g) => (g === 'ok' ? 'ok' : /rate limited/.test(g) ? 'limited' : g)), ['ok', 'ok', 'limited', 'limited']);
    const sets = await Promise.all([1, 2, 3, 4, 5].map((i) => c.set(`k${i}`, 'v')));
    assert.deepEqual(sets, ['OK', 'OK', 'OK', 'OK', 'OK']);
    // The filter's own counter (meltemi.metric_define / metric_record), on /metrics.
    const metrics = (await adminGet(proxy!.admin!.port, '/metrics')).body;
    assert.equal(metricSum(metrics, 'meltemi_plugin_metric_local_ratelimit_requests_total', { outcome: 'allowed' }), 2);
    assert.equal(metricSum(metrics, 'meltemi_plugin_metric_local_ratelimit_requests_total', { outcome: 'limited' }), 2);
  });

  const refusals: Array<[string, string, RegExp]> = [
    ['a bucket without tokens', '[ { name: local-ratelimit, config: { tokenBucket: { maxTokens: 0, fillInterval: 1s } } } ]',
      /listeners\[0\]\.filters\[0\]\.config: filter local-ratelimit refused its config: tokenBucket\.maxTokens must be a number >= 1/],
    ['a regex match', '[ { name: local-ratelimit, config: { conditions: [ { match: { attributes: { key: { regex: "a.*" } } }, tokenBucket: { maxTokens: 1, fillInterval: 1s } } ] } } ]',
      /conditions\[0\]\.match\.attributes\.key needs exact or prefix/],
    ['a filter the plugin directory does not have', '[ { name: no-such-filter } ]',
      /listeners\[0\]\.filters\[0\]\.name: no filter plugin "no-such-filter" in the plugin directory \(loaded: [^)]*local-ratelimit/],
  ];
  for (const [what, filters, message] of refusals) {
    it(`refuses ${what}, naming the field`, async () => {
      await assert.rejects(start(filters), message);
    });
  }
});
