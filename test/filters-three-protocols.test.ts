// Every first-party filter on Redis, Thrift and Dubbo traffic through meltemi to real peers:
// authz refuses a denied command/method with the protocol's error and lets the rest pass;
// fault aborts a matching call; local-ratelimit refuses the call past its bucket. One chain per
// listener holds all three, each keyed on its own command or method.

import assert from 'node:assert/strict';
import Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { DubboConsumer, DubboProvider, sayHello } from './helpers/dubbo-peers';
import { PLUGIN_DIR } from './helpers/paths';
import { portOf, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';
import { startThriftServer, thriftClient, ThriftClients, ThriftServer } from './helpers/thrift-peers';

/** The chain for a listener whose metadata key `key` names the call: deny, abort, limit. */
const chain = (key: string, deny: string, abort: string, limited: string) => `
      - { name: authz, config: { deny: [ { attributes: { ${key}: { exact: ${deny} } } } ] } }
      - { name: fault, config: { abort: { percentage: 100, kind: unspecified, message: injected, match: { attributes: { ${key}: { exact: ${abort} } } } } } }
      - { name: local-ratelimit, config: { conditions: [ { match: { attributes: { ${key}: { exact: ${limited} } } }, tokenBucket: { maxTokens: 1, tokensPerFill: 1, fillInterval: 60s } } ] } }`;

describe('first-party filters on Redis, Thrift and Dubbo', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let thrift: ThriftServer;
  let dubbo: DubboProvider;
  let proxy: Meltemi;
  let redisClient: Redis;
  let thriftClients: ThriftClients;
  let dubboClient: DubboConsumer;

  before(async () => {
    redis = await RedisServer.start();
    thrift = await startThriftServer('t', { transport: 'framed', protocol: 'binary' });
    dubbo = await DubboProvider.start('d', (call) => ({ value: `${call.method}:ok` }));
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: redis
    port: 0
    protocol: redis
    filters:${chain('command', 'DEL', 'INCR', 'EXISTS')}
    route_config: { routes: [ { route: { cluster: redis } } ] }
  - name: thrift
    port: 0
    protocol: thrift
    filters:${chain('method', 'big', 'who', 'echo')}
    route_config: { routes: [ { route: { cluster: thrift } } ] }
  - name: dubbo
    port: 0
    protocol: dubbo
    filters:${chain('method', 'forbidden', 'flaky', 'limited')}
    route_config: { routes: [ { route: { cluster: dubbo } } ] }
clusters:
  - { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
  - { name: thrift, endpoints: [ { address: 127.0.0.1, port: ${thrift.port} } ] }
  - { name: dubbo, endpoints: [ { address: 127.0.0.1, port: ${dubbo.port} } ] }
`);
    redisClient = new Redis({ port: portOf(proxy, 'redis'), host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
    thriftClients = await thriftClient(portOf(proxy, 'thrift'), { transport: 'framed', protocol: 'binary' });
    dubboClient = await DubboConsumer.connect(portOf(proxy, 'dubbo'));
  });

  after(async () => {
    redisClient?.disconnect();
    thriftClients?.close();
    dubboClient?.close();
    await proxy?.stop();
    await Promise.all([redis?.stop(), thrift?.stop(), dubbo?.stop()]);
  });

  /** 'ok', or the error text the client got. */
  const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: Error) => String(e.message));
  const dubboCall = async (method: string) => {
    const r = await dubboClient.invoke({ ...sayHello('x'), method });
    return r.error ?? r.exception ?? 'ok';
  };

  const protocols: Array<[string, Record<'allowed' | 'denied' | 'aborted' | 'limited', () => Promise<string>>]> = [
    ['redis', {
      allowed: () => outcome(redisClient.get('k')),
      denied: () => outcome(redisClient.del('k')),
      aborted: () => outcome(redisClient.incr('n')),
      limited: () => outcome(redisClient.exists('k')),
    }],
    ['thrift', {
      // fail() answers with the server's own Oops: the call reached the server.
      allowed: () => thriftClients.echo.fail('expected').then(() => 'no Oops', (e: { why?: string; message?: string }) => (e.why === 't:expected' ? 'ok' : String(e.why ?? e.message))),
      denied: () => outcome(thriftClients.echo.big(Buffer.from('x'))),
      aborted: () => outcome(thriftClients.echo.who()),
      limited: () => outcome(thriftClients.echo.echo('m', new Map(), [], new Set())),
    }],
    ['dubbo', {
      allowed: () => dubboCall('sayHello'),
      denied: () => dubboCall('forbidden'),
      aborted: () => dubboCall('flaky'),
      limited: () => dubboCall('limited'),
    }],
  ];

  for (const [protocol, calls] of protocols) {
    it(`${protocol}: authz denies, fault aborts, local-ratelimit limits; other calls pass`, async () => {
      assert.equal(await calls.allowed(), 'ok');
      assert.match(await calls.denied(), /denied by authorization policy/);
      assert.match(await calls.aborted(), /injected/);
      assert.equal(await calls.limited(), 'ok', 'the first call takes the only token');
      assert.match(await calls.limited(), /rate limited/);
      assert.equal(await calls.allowed(), 'ok', 'the connection is still usable');
    });
  }
});
