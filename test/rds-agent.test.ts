// RDS: MetaProtocol routes tunnelled in Envoy RouteConfigurations the way Aeraki encodes them,
// fetched by meltemi's agent over real gRPC: applied to live traffic without dropping
// connections, ACKed, NACKed with a reason (old routes keep serving), survived across a
// control-plane restart.

import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { parseConfig } from '../runtime/config/load';
import type { RouteConfiguration } from '../runtime/config/types';
import type { Meltemi } from '../runtime/server';
import { envoyType, fromPlain, toPlain } from '../runtime/xds/envoy-protos';
import { decodeTunnel, encodeTunnel } from '../runtime/xds/route-tunnel';
import { PLUGIN_DIR } from './helpers/paths';
import { adminGet, portOf, startProxy } from './helpers/proxy';
import { RdsServer } from './helpers/rds-server';
import { RedisServer } from './helpers/redis-server';

const STATIC = `
listeners:
  - name: l
    port: 0
    protocol: dubbo
    route_config:
      name: org.apache.dubbo.samples.DemoService_20880
      routes:
        - name: batch
          match: { metadata: [ { name: batchJob, exact_match: "true" }, { name: method, safe_regex_match: { regex: "say.*" } } ] }
          route: { cluster: "outbound|20880|v2|demo" }
          request_mutation: [ { key: x-tenant, value: blue } ]
        - name: canary
          match: { metadata: [ { name: user, prefix_match: "jason" }, { name: debug, present_match: true }, { name: env, exact_match: prod, invert_match: true } ] }
          route:
            weighted_clusters: { clusters: [ { name: "outbound|20880|v1|demo", weight: 20 }, { name: "outbound|20880|v2|demo", weight: 80 } ] }
            hash_policy: [ user ]
            request_mirror_policies: [ { cluster: "outbound|20880|v2|demo", percentage: 12.5 } ]
        - name: default
          route: { cluster: "outbound|20880|v1|demo" }
clusters:
  - { name: "outbound|20880|v1|demo", endpoints: [ { address: 127.0.0.1, port: 1 } ] }
  - { name: "outbound|20880|v2|demo", endpoints: [ { address: 127.0.0.1, port: 2 } ] }
`;

const roundTrip = (rc: RouteConfiguration) => decodeTunnel(toPlain(envoyType('RouteConfiguration'), fromPlain(envoyType('RouteConfiguration'), encodeTunnel(rc)))).routes;
const defaultTo = (name: string, cluster: string) => encodeTunnel({ name, routes: [{ name: 'default', match: { metadata: [] }, route: { kind: 'cluster', cluster }, requestMutation: [] }] });

describe('RDS route tunnel', () => {
  it('bytes of an Aeraki-shaped RouteConfiguration decode to the same routes as the static config', () => {
    const routes = parseConfig(STATIC, '/').listeners[0].routeConfig;
    assert.deepEqual(roundTrip(routes), routes);
  });

  it('reads what Aeraki sends: string_match, google_re2 regexes, weights as wrappers, prefix "/"', () => {
    const { routes: rc } = decodeTunnel({
      name: 'svc_9090',
      virtual_hosts: [{ name: 'dummy', domains: ['*'], routes: [{
        name: 'r',
        match: { prefix: '/', headers: [
          { name: 'method', string_match: { exact: 'add', match_pattern: 'exact' }, header_match_specifier: 'string_match' },
          { name: 'service', safe_regex_match: { google_re2: {}, regex: 'Calc|Echo' }, header_match_specifier: 'safe_regex_match' },
        ] },
        route: { weighted_clusters: { clusters: [{ name: 'a', weight: { value: 3 } }, { name: 'b', weight: { value: 1 } }], total_weight: { value: 4 } }, cluster_specifier: 'weighted_clusters' },
        action: 'route',
      }] }],
    });
    assert.deepEqual(rc.routes[0].match.metadata.map((m) => [m.name, m.match]), [['method', { kind: 'exact', value: 'add' }], ['service', { kind: 'regex', value: 'Calc|Echo' }]]);
    assert.deepEqual(rc.routes[0].route, { kind: 'weighted_clusters', clusters: [{ name: 'a', weight: 3 }, { name: 'b', weight: 1 }] });
  });

  it('carries the route timeout and retry policy as Envoy RouteAction fields, idempotent in route metadata', () => {
    const rc: RouteConfiguration = { name: 'r', routes: [{
      name: 'reads', match: { metadata: [] }, requestMutation: [],
      route: { kind: 'cluster', cluster: 'c', timeoutMs: 2500, retryPolicy: { retryOn: ['reset', 'timeout'], numRetries: 3, perTryTimeoutMs: 200, backOff: { baseMs: 10, maxMs: 80 }, idempotent: true } },
    }] };
    const envoy = encodeTunnel(rc) as { virtual_hosts: Array<{ routes: Array<Record<string, any>> }> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(envoy.virtual_hosts[0].routes[0].route.retry_policy.retry_on, 'reset,timeout');
    assert.deepEqual(envoy.virtual_hosts[0].routes[0].route.timeout, { seconds: '2', nanos: 500_000_000 });
    assert.deepEqual(roundTrip(rc), rc);
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['two virtual hosts', { name: 'x', virtual_hosts: [{}, {}] }, /virtual_hosts: expected exactly one virtual host, got 2/],
    ['a route without an action', { name: 'x', virtual_hosts: [{ routes: [{ name: 'r', match: {} }] }] }, /virtual_hosts\[0\]\.routes\[0\]\.route: a route action is required/],
    ['a redirect', { name: 'x', virtual_hosts: [{ routes: [{ redirect: {}, action: 'redirect' }] }] }, /routes\[0\]\.redirect: only route actions/],
    // NACK reasons name the field of the message the control plane sent, not meltemi's model.
    ['a bad regex', { name: 'x', virtual_hosts: [{ routes: [{ match: { headers: [{ name: 'k', safe_regex_match: { regex: '(' }, header_match_specifier: 'safe_regex_match' }] }, route: { cluster: 'c' } }] }] }, /^ConfigError: virtual_hosts\[0\]\.routes\[0\]\.match\.headers\[0\]\.safe_regex_match\.regex: invalid RE2 regular expression/],
    ['a bad string_match regex', { name: 'x', virtual_hosts: [{ routes: [{}, { match: { headers: [{ name: 'k' }, { name: 'k', string_match: { safe_regex: { regex: '(' }, match_pattern: 'safe_regex' }, header_match_specifier: 'string_match' }] }, route: { cluster: 'c' } }].map((r) => ({ route: { cluster: 'c' }, ...r })) }] }, /^ConfigError: virtual_hosts\[0\]\.routes\[1\]\.match\.headers\[1\]\.string_match\.safe_regex\.regex: invalid RE2/],
    ['an empty string_match prefix', { name: 'x', virtual_hosts: [{ routes: [{ match: { headers: [{ name: 'k', string_match: { prefix: '', match_pattern: 'prefix' }, header_match_specifier: 'string_match' }] }, route: { cluster: 'c' } }] }] }, /^ConfigError: virtual_hosts\[0\]\.routes\[0\]\.match\.headers\[0\]\.string_match\.prefix: must not be empty/],
    ['a header without a name', { name: 'x', virtual_hosts: [{ routes: [{ match: { headers: [{ exact_match: 'v', header_match_specifier: 'exact_match' }] }, route: { cluster: 'c' } }] }] }, /^ConfigError: virtual_hosts\[0\]\.routes\[0\]\.match\.headers\[0\]\.name: must be a string/],
    ['a mutation without a key', { name: 'x', virtual_hosts: [{ routes: [{ route: { cluster: 'c' }, request_headers_to_add: [{ header: { value: 'v' } }] }] }] }, /^ConfigError: virtual_hosts\[0\]\.routes\[0\]\.request_headers_to_add\[0\]\.header\.key: must be a string/],
    ['all weights 0', { name: 'x', virtual_hosts: [{ routes: [{ route: { weighted_clusters: { clusters: [{ name: 'a', weight: { value: 0 } }] } } }] }] }, /^ConfigError: virtual_hosts\[0\]\.routes\[0\]\.route\.weighted_clusters\.clusters: weights must not all be 0/],
    ['an unknown retry condition', { name: 'x', virtual_hosts: [{ routes: [{ route: { cluster: 'c', retry_policy: { retry_on: 'retriable-4xx' } } }] }] }, /^ConfigError: virtual_hosts\[0\]\.routes\[0\]\.route\.retry_policy\.retry_on: unknown condition "retriable-4xx"/],
    ['a hash policy without a header', { name: 'x', virtual_hosts: [{ routes: [{ route: { cluster: 'c', hash_policy: [{ header: { header_name: '' } }] } }] }] }, /^ConfigError: virtual_hosts\[0\]\.routes\[0\]\.route\.hash_policy\[0\]\.header\.header_name: must not be empty/],
  ];
  for (const [what, rc, message] of bad) {
    it(`rejects ${what}, naming the Envoy field`, () => assert.throws(() => decodeTunnel(rc), (err: Error) => { assert.match(String(err), message); return true; }));
  }
});

describe('RDS agent against a gRPC RDS server', function () {
  this.timeout(30_000);
  const NAME = 'redis.default.svc.cluster.local_6379';
  let a: RedisServer;
  let b: RedisServer;
  let rds: RdsServer;
  let proxy: Meltemi;
  let client: Redis;
  const direct: Redis[] = [];
  const on = (s: RedisServer) => {
    const c = new Redis({ port: s.port, host: '127.0.0.1', protocol: 2, disableClientInfo: true });
    direct.push(c);
    return c;
  };
  /** Writes `key` through the proxy until it lands on `server` (routes apply asynchronously). */
  async function landsOn(server: RedisServer, key: string, ms = 2000): Promise<number> {
    const t0 = Date.now();
    for (let i = 0; Date.now() - t0 < ms; i++) {
      await client.set(`${key}:${i}`, 'x');
      if (await on(server).exists(`${key}:${i}`)) return Date.now() - t0;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`${key} never landed on port ${server.port}`);
  }
  const acksFor = (version: string) => rds.requests.filter((r) => r.response_nonce && r.version_info === version && !r.error_detail);

  before(async () => {
    [a, b] = await Promise.all([RedisServer.start(), RedisServer.start()]);
    rds = new RdsServer();
    await rds.start();
    rds.push(NAME, '1', defaultTo(NAME, 'a'));
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
xds: { address: 127.0.0.1, port: ${rds.port}, node: { id: "sidecar~127.0.0.1~meltemi-test.default~default.svc.cluster.local", cluster: meltemi, metadata: { ISTIO_VERSION: "1.21" } }, initial_backoff: 100ms, max_backoff: 1s }
listeners:
  - name: redis
    port: 0
    protocol: redis
    rds: { route_config_name: ${NAME} }
clusters:
  - { name: a, endpoints: [ { address: 127.0.0.1, port: ${a.port} } ] }
  - { name: b, endpoints: [ { address: 127.0.0.1, port: ${b.port} } ] }
`);
    client = new Redis({ port: portOf(proxy, 'redis'), host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
  });

  after(async () => {
    client?.disconnect();
    for (const c of direct) c.disconnect();
    await proxy?.stop();
    await rds?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('subscribes with the node identity and route_config_name, applies and ACKs version 1', async () => {
    await landsOn(a, 'v1');
    const first = rds.requests[0];
    assert.deepEqual(first.resource_names, [NAME]);
    assert.equal((first.node as { id: string }).id, 'sidecar~127.0.0.1~meltemi-test.default~default.svc.cluster.local');
    assert.equal(first.type_url, 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration');
    assert.ok(acksFor('1').length >= 1, 'version 1 ACKed');
  });

  it('a route update moves the next requests of a live connection, without dropping it', async () => {
    let errors = 0;
    client.on('error', () => errors++);
    rds.push(NAME, '2', defaultTo(NAME, 'b'));
    const ms = await landsOn(b, 'v2');
    assert.ok(ms < 2000);
    assert.equal(client.status, 'ready');
    assert.equal(errors, 0);
    assert.ok(acksFor('2').length >= 1);
  });

  it('a route it cannot accept is NACKed with the reason; the old routes keep serving; /config_dump shows it', async () => {
    rds.push(NAME, '3', { name: NAME, virtual_hosts: [{ name: 'dummy', routes: [{ name: 'broken', match: { headers: [{ name: 'key', safe_regex_match: { regex: '([' } }] }, route: { cluster: 'a' } }] }] });
    const deadline = Date.now() + 2000;
    let nack: Record<string, unknown> | undefined;
    while (!nack && Date.now() < deadline) {
      nack = rds.requests.find((r) => r.error_detail);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(nack, 'a NACK arrived');
    assert.equal(nack.version_info, '2', 'the NACK carries the version still in use');
    assert.match((nack.error_detail as { message: string }).message, /safe_regex_match\.regex: invalid RE2 regular expression/);
    await landsOn(b, 'still-v2');
    const dump = JSON.parse((await adminGet(proxy.admin!.port, '/config_dump')).body);
    const status = dump.dynamic_route_configs[0];
    assert.equal(status.versionInfo, '2');
    assert.equal(status.errorState.versionInfo, '3');
    assert.match(status.errorState.details, /invalid RE2 regular expression/);
  });

  async function until<T>(what: string, find: () => T | undefined): Promise<T> {
    const deadline = Date.now() + 2000;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`not within 2 s: ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('a route to an unknown cluster is ACKed (Envoy\'s RDS default): matching requests get an error reply at once', async () => {
    rds.push(NAME, '3a', defaultTo(NAME, 'nowhere'));
    await until('version 3a ACKed', () => acksFor('3a')[0]);
    await assert.rejects(client.get('k'), /unknown cluster "nowhere"/);
    rds.push(NAME, '3b', defaultTo(NAME, 'b'));
    await until('version 3b ACKed', () => acksFor('3b')[0]);
    await landsOn(b, 'v3b');
  });

  it('with validate_clusters set by the control plane, the same update is NACKed naming the Envoy field', async () => {
    rds.push(NAME, '3c', { ...defaultTo(NAME, 'nowhere'), validate_clusters: { value: true } });
    const nack = await until('a NACK of 3c', () => rds.requests.find((r) => r.error_detail && /nowhere/.test((r.error_detail as { message: string }).message)));
    assert.match((nack.error_detail as { message: string }).message, /virtual_hosts\[0\]\.routes\[0\]\.route\.cluster: unknown cluster "nowhere"/);
    assert.equal(nack.version_info, '3b', 'the NACK carries the version still in use');
    await landsOn(b, 'still-v3b');
  });

  it('keeps serving while the control plane is down, and resyncs when it comes back', async () => {
    const port = rds.port;
    await rds.stop();
    await landsOn(b, 'down');
    rds = new RdsServer();
    rds.push(NAME, '4', defaultTo(NAME, 'a'));
    await rds.start(port);
    await landsOn(a, 'resynced', 5000);
    assert.equal(rds.requests.find((r) => !r.response_nonce)?.version_info, '3b', 'the reconnecting agent reported the version it kept');
  });
});
