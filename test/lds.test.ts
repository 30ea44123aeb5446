// Listeners from a control plane (LDS over ADS), the way Istio serves them to Envoy: meltemi with
// no listener of its own opens the one meltemi's control plane builds from a ServiceEntry, with
// routes over RDS and the MetaRouter's localRateLimit as Aeraki's local rate limit filter, and
// real Redis traffic through it; edits reach new connections; a removed service's listener is
// drained and its port freed. Then hostile and unservable Listener resources, served raw: each is
// NACKed with the field that is wrong, and the listener accepted before keeps serving.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { ControlPlane } from '../runtime/control-plane/control-plane';
import { DirectorySource } from '../runtime/control-plane/resource-source';
import { XdsServer } from '../runtime/control-plane/xds-server';
import type { Meltemi } from '../runtime/server';
import { envoyType, fromPlain, TYPE_LISTENER, TYPE_LOCAL_RATE_LIMIT, TYPE_META_PROTOCOL_PROXY, TYPED_STRUCT_URLS } from '../runtime/xds/envoy-protos';
import { jsonToStruct } from '../runtime/xds/proto-json';
import { CaptureLogger } from './helpers/capture-logger';
import { PLUGIN_DIR } from './helpers/paths';
import { freePort } from './helpers/ports';
import { startProxy } from './helpers/proxy';
import { redisClient, RedisServer } from './helpers/redis-server';

const HOST = 'cache.demo.svc.cluster.local';
type Plain = Record<string, unknown>;


async function until(what: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!what()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Requests until the first refused one; returns how many passed (at most `max`). */
async function passedBeforeLimit(port: number, max: number): Promise<number> {
  const c = redisClient(port);
  try {
    for (let i = 0; i < max; i++) {
      try {
        await c.ping();
      } catch (err) {
        assert.match((err as Error).message, /rate limited/);
        return i;
      }
    }
    return max;
  } finally {
    c.disconnect();
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(true));
  });
}

const serviceEntry = (port: number, redisPort: number) => `
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: { name: cache, namespace: demo }
spec:
  hosts: [ ${HOST} ]
  ports: [ { number: ${port}, name: tcp-metaprotocol-redis-cache, protocol: TCP } ]
  endpoints: [ { address: 127.0.0.1, ports: { tcp-metaprotocol-redis-cache: ${redisPort} } } ]
`;

const metaRouter = (maxTokens: number) => `
apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: { name: cache, namespace: demo }
spec:
  hosts: [ ${HOST} ]
  localRateLimit:
    tokenBucket: { maxTokens: ${maxTokens}, tokensPerFill: ${maxTokens}, fillInterval: 3600s }
`;

describe('LDS: listeners from the control plane', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let dir: string;
  let cp: ControlPlane;
  let proxy: Meltemi;
  let port: number;
  const name = () => `127.0.0.1_${port}`;
  const ldsVersion = () => proxy.ads!.statuses.get(TYPE_LISTENER)!.versionInfo;

  before(async () => {
    redis = await RedisServer.start();
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'meltemi-lds-'));
    writeFileSync(join(dir, 'se.yaml'), serviceEntry(port, redis.port));
    writeFileSync(join(dir, 'router.yaml'), metaRouter(5));
    cp = new ControlPlane(new DirectorySource(dir, 20), new CaptureLogger());
    const cpPort = await cp.start('127.0.0.1', 0);
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
xds: { address: 127.0.0.1, port: ${cpPort}, ads: true, lds: true, initial_fetch_timeout: 10s, drain_timeout: 200ms }
`);
  });
  after(async () => {
    await proxy?.stop();
    cp?.stop();
    await redis?.stop();
  });

  it('opens the service\'s listener with routes over RDS and the MetaRouter\'s rate limit', async () => {
    const l = proxy.listener(name());
    assert.ok(l, `listener ${name()} from LDS`);
    assert.equal(l.config.protocol, 'redis');
    assert.equal(l.config.rds?.routeConfigName, `${HOST}_${port}`);
    assert.deepEqual(l.config.filters.map((f) => f.name), ['local-ratelimit']);
    assert.equal(await passedBeforeLimit(port, 20), 5, 'a bucket of 5 tokens that refills hourly');
  });

  it('an edited MetaRouter reaches new connections (a new bucket)', async () => {
    const before = ldsVersion();
    writeFileSync(join(dir, 'router.yaml'), metaRouter(12));
    await until(() => ldsVersion() !== before);
    assert.equal(await passedBeforeLimit(port, 30), 12);
  });

  it('a removed service\'s listener is drained and its port freed; adding it back opens it again', async () => {
    writeFileSync(join(dir, 'se.yaml'), '');
    await until(() => proxy.listener(name()) === undefined);
    assert.ok(await refused(port), 'the port no longer accepts');
    writeFileSync(join(dir, 'se.yaml'), serviceEntry(port, redis.port));
    await until(() => proxy.listener(name()) !== undefined);
    assert.equal(await passedBeforeLimit(port, 30), 12);
  });
});

/**
 * A Listener whose network filter is a MetaProtocolProxy: `form` bytes, or a TypedStruct of its
 * JSON (or of a Struct built by hand, as a hostile server could).
 */
function mppListener(name: string, port: number, mpp: Plain, form: 'bytes' | 'typed_struct' | 'raw_struct'): Plain {
  let typedConfig: Plain;
  if (form === 'bytes') {
    typedConfig = { type_url: TYPE_META_PROTOCOL_PROXY, value: fromPlain(envoyType('MetaProtocolProxy'), mpp) };
  } else {
    const ts = envoyType('TypedStruct');
    const struct = form === 'raw_struct' ? mpp : jsonToStruct(mpp as never);
    typedConfig = { type_url: TYPED_STRUCT_URLS[0], value: ts.encode(ts.fromObject({ type_url: TYPE_META_PROTOCOL_PROXY, value: struct })).finish() };
  }
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.meta_protocol_proxy', typed_config: typedConfig }] }],
  };
}

const staticRoutes = { route_config: { name: 'local', routes: [{ route: { cluster: 'cache' } }] } };
const lrlAny = (bucket: Plain) => ({ type_url: TYPE_LOCAL_RATE_LIMIT, value: fromPlain(envoyType('LocalRateLimit'), { stat_prefix: 'x', token_bucket: bucket }) });

describe('LDS: Listener resources that cannot be served are NACKed, the last good keeps serving', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: XdsServer;
  let proxy: Meltemi;
  let goodPort: number;
  let taken: net.Server;
  let takenPort: number;
  let staticPort: number;
  const status = () => proxy.ads!.statuses.get(TYPE_LISTENER)!;
  let good: Plain;

  before(async () => {
    redis = await RedisServer.start();
    goodPort = await freePort();
    staticPort = await freePort();
    taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    takenPort = (taken.address() as net.AddressInfo).port;
    server = new XdsServer(new CaptureLogger());
    const xdsPort = await server.listen('127.0.0.1', 0);
    // The accepted listener: MetaProtocolProxy bytes, static routes, Aeraki's local rate limit.
    good = mppListener('good', goodPort, {
      stat_prefix: 'good', protocol: { name: 'redis' }, ...staticRoutes,
      meta_protocol_filters: [{ name: 'aeraki.meta_protocol.filters.local_ratelimit', config: lrlAny({ max_tokens: 1000, fill_interval: { seconds: 1 } }) }, { name: 'aeraki.meta_protocol.filters.router' }],
    }, 'bytes');
    server.setListeners([good]);
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
clusters: [ { name: cache, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] } ]
listeners: [ { name: static, port: ${staticPort}, protocol: redis, route_config: { routes: [ { route: { cluster: cache } } ] } } ]
xds: { address: 127.0.0.1, port: ${xdsPort}, lds: true, initial_fetch_timeout: 10s, drain_timeout: 100ms }
`);
  });
  after(async () => {
    await proxy?.stop();
    server?.stop();
    taken?.close();
    await redis?.stop();
  });

  it('serves a listener sent as MetaProtocolProxy bytes with static routes', async () => {
    assert.equal(status().acks, 1);
    const c = redisClient(goodPort);
    assert.equal(await c.ping(), 'PONG');
    c.disconnect();
  });

  const mpp = (extra: Plain) => ({ stat_prefix: 'bad', protocol: { name: 'redis' }, ...staticRoutes, ...extra });
  const cases: Array<{ what: string; listener: () => Plain; reason: RegExp }> = [
    {
      what: 'a global rate limit meltemi cannot enforce',
      listener: () => mppListener('bad', 1, mpp({ meta_protocol_filters: [{ name: 'aeraki.meta_protocol.filters.ratelimit' }] }), 'bytes'),
      reason: /listener "bad": filter_chains\[0\]\.filters\[0\]\.typed_config\.meta_protocol_filters\[0\]\.name: .*global rate limit.* not supported/,
    },
    {
      what: 'a filter plugin that is not in the plugin directory',
      listener: () => mppListener('bad', 1, mpp({ meta_protocol_filters: [{ name: 'no-such-filter' }] }), 'bytes'),
      reason: /listener "bad": .*filters\[0\]\.name: no filter plugin "no-such-filter"/,
    },
    {
      what: 'a local rate limit that refills faster than 50 ms',
      listener: () => mppListener('bad', 1, mpp({ meta_protocol_filters: [{ name: 'aeraki.meta_protocol.filters.local_ratelimit', config: lrlAny({ max_tokens: 1, fill_interval: { nanos: 10_000_000 } }) }] }), 'bytes'),
      reason: /meta_protocol_filters\[0\]\.config\.token_bucket\.fill_interval: must be at least 50ms/,
    },
    {
      what: 'a misspelled field in the TypedStruct',
      listener: () => mppListener('bad', 1, { statPrefix: 'bad', protocol: { name: 'redis' }, rds: { routeConfigNam: 'x' } }, 'typed_struct'),
      reason: /typed_config\.value\.rds\.routeConfigNam: unknown field/,
    },
    {
      what: 'a protocol no codec plugin speaks',
      listener: () => mppListener('bad', 1, mpp({ protocol: { name: 'kafka' } }), 'bytes'),
      reason: /listener "bad": protocol: no codec plugin for protocol "kafka"/,
    },
    {
      what: 'a port another process holds',
      listener: () => mppListener('bad', takenPort, mpp({}), 'bytes'),
      reason: /listener "bad": .*(EADDRINUSE|in use)/i,
    },
    {
      what: 'a listener on the port of a listener of the YAML file (which is bound first)',
      listener: () => mppListener('bad', staticPort, mpp({}), 'bytes'),
      reason: /listener "bad": address: 127\.0\.0\.1:\d+ is a static listener's of the YAML config/,
    },
    {
      what: 'filter chain matching (a source allow-list meltemi would not enforce)',
      listener: () => {
        const l = mppListener('bad', 1, mpp({}), 'bytes');
        (l.filter_chains as Plain[])[0].filter_chain_match = { source_prefix_ranges: [{ address_prefix: '10.99.0.0', prefix_len: { value: 16 } }] };
        return l;
      },
      reason: /filter_chains\[0\]\.filter_chain_match: is not supported/,
    },
    {
      what: 'a listener filter that changes the stream (PROXY protocol)',
      listener: () => ({ ...mppListener('bad', 1, mpp({}), 'bytes'), listener_filters: [{ name: 'envoy.filters.listener.proxy_protocol' }] }),
      reason: /listener_filters\[0\]\.name: envoy\.filters\.listener\.proxy_protocol is not supported/,
    },
    {
      what: 'an address that is a host name',
      listener: () => ({ ...mppListener('bad', 1, mpp({}), 'bytes'), address: { socket_address: { address: 'localhost', port_value: 1 } } }),
      reason: /address\.socket_address\.address: "localhost" is not an IP address/,
    },
    {
      what: '15 listeners with names of 180 000 characters (the NACK stays small)',
      listener: () => mppListener(`${'n'.repeat(180_000)}-first`, 1, mpp({}), 'bytes'),
      reason: /^15 listeners not applied: resources\[1\]: name: is longer than 256 characters; resources\[2\]/,
    },
    {
      what: 'TLS on the filter chain',
      listener: () => ({ ...mppListener('bad', 1, mpp({}), 'bytes'), filter_chains: [{ ...(mppListener('bad', 1, mpp({}), 'bytes').filter_chains as Plain[])[0], transport_socket: { name: 'tls' } }] }),
      reason: /filter_chains\[0\]\.transport_socket: TLS .* not supported/,
    },
    {
      what: 'a TypedStruct nested 2000 deep',
      listener: () => {
        let deep: Plain = { fields: {} };
        for (let i = 0; i < 2000; i++) deep = { fields: { a: { structValue: deep } } };
        // Written past protobufjs's own depth limit, as a hostile server could.
        const limit = protobuf.util.recursionLimit;
        protobuf.util.recursionLimit = 100_000;
        try {
          return mppListener('bad', 1, deep, 'raw_struct');
        } finally {
          protobuf.util.recursionLimit = limit;
        }
      },
      reason: /listener "bad": cannot be read: max depth exceeded/,
    },
  ];
  const hugeNames = () => Array.from({ length: 14 }, (_, i) => mppListener(`${'n'.repeat(180_000)}${i}`, 1, mpp({}), 'bytes'));
  for (const c of cases) {
    it(`NACKs ${c.what}, naming the field; the good listener keeps serving`, async () => {
      const nacks = status().nacks;
      const version = status().versionInfo;
      server.setListeners([good, c.listener(), ...(c.what.startsWith('15 listeners') ? hugeNames() : [])]);
      await until(() => status().nacks > nacks);
      assert.match(status().errorState!.details, c.reason);
      assert.ok(status().errorState!.details.length < 10_000, 'a NACK reason is bounded');
      assert.equal(status().versionInfo, version, 'the accepted version stays');
      assert.equal(proxy.listener('bad'), undefined);
      const client = redisClient(goodPort);
      assert.equal(await client.ping(), 'PONG');
      client.disconnect();
    });
  }

  it('an update that breaks the accepted listener is NACKed and the listener keeps its previous version', async () => {
    const nacks = status().nacks;
    const broken = mppListener('good', goodPort, { stat_prefix: 'good', protocol: { name: 'redis' }, ...staticRoutes, meta_protocol_filters: [{ name: 'no-such-filter' }] }, 'bytes');
    server.setListeners([broken]);
    await until(() => status().nacks > nacks);
    assert.match(status().errorState!.details, /listener "good": .*no filter plugin "no-such-filter"/);
    assert.deepEqual(proxy.listener('good')!.config.filters.map((f) => f.name), ['local-ratelimit']);
    const client = redisClient(goodPort);
    assert.equal(await client.ping(), 'PONG');
    client.disconnect();
    server.setListeners([good]);
  });

  it('a port one listener moves away from is taken by another in the same update, in either order', async () => {
    const [x, z] = [await freePort(), await freePort()];
    const lst = (name: string, port: number) => mppListener(name, port, { stat_prefix: name, protocol: { name: 'redis' }, ...staticRoutes }, 'bytes');
    let acks = status().acks;
    server.setListeners([good, lst('a', x)]);
    await until(() => status().acks > acks);
    acks = status().acks;
    server.setListeners([good, lst('c', x), lst('a', z)]); // c wants x before a has left it
    await until(() => status().acks > acks || status().nacks > 0 && status().errorState?.details.includes('"c"') === true);
    assert.equal(proxy.listener('c')?.port, x, status().errorState?.details);
    assert.equal(proxy.listener('a')?.port, z);
    const client = redisClient(x);
    assert.equal(await client.ping(), 'PONG');
    client.disconnect();
    server.setListeners([good]);
  });

  it('a removed listener\'s stats go with it (LDS churn does not grow memory or /metrics)', async () => {
    const acks = status().acks;
    const port = await freePort();
    server.setListeners([good, mppListener('short-lived', port, { stat_prefix: 's', protocol: { name: 'redis' }, ...staticRoutes }, 'bytes')]);
    await until(() => status().acks > acks && proxy.listener('short-lived') !== undefined);
    const client = redisClient(port);
    assert.equal(await client.ping(), 'PONG');
    client.disconnect();
    assert.ok(proxy.stats.listeners.has('short-lived'));
    server.setListeners([good]);
    await until(() => !proxy.stats.listeners.has('short-lived'));
    assert.ok(![...proxy.stats.requests.values()].some((r) => r.listener === 'short-lived'));
  });

  it('passes over listeners that are not MetaProtocol ones (HTTP, TCP proxy) and ACKs', async () => {
    const acks = status().acks;
    const tcp = { name: 'virtualOutbound', address: { socket_address: { address: '127.0.0.1', port_value: 15001 } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy' }] }] };
    server.setListeners([good, tcp]);
    await until(() => status().acks > acks);
    assert.equal(proxy.listener('virtualOutbound'), undefined);
    assert.ok(proxy.listener('good'));
  });

  it('a listener an update no longer names is removed; sending it again opens it', async () => {
    const acks = status().acks;
    server.setListeners([]);
    await until(() => status().acks > acks);
    assert.equal(proxy.listener('good'), undefined);
    assert.ok(await refused(goodPort));
    server.setListeners([good]);
    await until(() => proxy.listener('good') !== undefined);
    const client = redisClient(goodPort);
    assert.equal(await client.ping(), 'PONG');
    client.disconnect();
  });
});

describe('LDS: warming', function () {
  this.timeout(60_000);
  let server: XdsServer;
  let redis: RedisServer;
  let proxy: Meltemi | undefined;
  const status = () => proxy!.ads!.statuses.get(TYPE_LISTENER)!;
  const rdsListener = (name: string, port: number) => mppListener(name, port, { stat_prefix: name, protocol: { name: 'redis' }, rds: { route_config_name: `never-${name}` } }, 'bytes');

  let xdsPort: number;

  before(async () => {
    redis = await RedisServer.start();
    server = new XdsServer(new CaptureLogger());
    xdsPort = await server.listen('127.0.0.1', 0);
  });
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });
  after(async () => {
    server?.stop();
    await redis?.stop();
  });

  async function start(warm: string): Promise<void> {
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
clusters: [ { name: cache, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] } ]
xds: { address: 127.0.0.1, port: ${xdsPort}, lds: true, initial_fetch_timeout: ${warm} }
`);
  }

  it('listeners waiting for routes that never come hold up neither the update nor the next one', async () => {
    // Five listeners whose routes never come, each warming for up to 10 minutes: serial warming
    // would take 50 minutes to ACK; the test's own timeout is one.
    const ports = await Promise.all(Array.from({ length: 5 }, () => freePort()));
    server.setListeners(ports.map((p, i) => rdsListener(`w${i}`, p)));
    await start('600s');
    assert.equal(status().acks, 1);
    const goodPort = await freePort();
    server.setListeners([...ports.map((p, i) => rdsListener(`w${i}`, p)), mppListener('ready', goodPort, { stat_prefix: 'r', protocol: { name: 'redis' }, ...staticRoutes }, 'bytes')]);
    await until(() => status().acks === 2);
    const client = redisClient(goodPort);
    assert.equal(await client.ping(), 'PONG');
    client.disconnect();
    assert.ok(!(await refused(ports[0])), 'a warming listener is bound (its port is taken) and holds its clients');
  });

  it('stopping the proxy while listeners warm leaves no port bound', async () => {
    const port = await freePort();
    server.setListeners([rdsListener('warming', port)]);
    await start('600s');
    assert.ok(!(await refused(port)));
    await proxy!.stop();
    proxy = undefined;
    assert.ok(await refused(port), 'the port is free once stop() resolved');
  });
});
