// Config validation: a minimal file gets its defaults; every mistake is rejected with the path
// of the offending field.

import assert from 'node:assert/strict';
import { parseConfig } from '../runtime/config/load';
import { ConfigError } from '../runtime/core/errors';
import { validateConfig } from '../runtime/config/validate';

const VALID = `
listeners:
  - name: redis
    port: 6380
    protocol: redis
    route_config:
      routes:
        - route: { cluster: main }
clusters:
  - name: main
    endpoints: [ { address: 127.0.0.1, port: 6379 } ]
`;

/** VALID with one edit applied through a JSON patch-like function on the parsed object. */
function variant(edit: (c: any) => void): string {
  const yaml = require('yaml') as typeof import('yaml');
  const doc = yaml.parse(VALID);
  edit(doc);
  return yaml.stringify(doc);
}

describe('config', () => {
  it('fills defaults and resolves the plugin directory against the config folder', () => {
    const c = parseConfig(VALID, '/etc/meltemi');
    assert.equal(c.plugins.directory, '/etc/meltemi/build/plugins');
    assert.equal(c.listeners[0].address, '127.0.0.1');
    assert.equal(c.listeners[0].upstreamConnection, 'shared');
    assert.equal(c.listeners[0].maxFrameSize, 64 * 1024 * 1024);
    assert.equal(c.clusters[0].connectTimeoutMs, 1000);
    assert.equal(c.clusters[0].connectionsPerEndpoint, 1);
    assert.deepEqual(c.listeners[0].routeConfig.routes[0].match.metadata, []);
    assert.equal(c.admin, undefined);
  });

  it('reads matchers, weighted clusters, mutations and durations', () => {
    const c = parseConfig(variant((d) => {
      d.clusters.push({ name: 'b', endpoints: [{ address: '127.0.0.1', port: 1 }], connect_timeout: '1.5s' });
      d.listeners[0].route_config.routes.unshift({
        name: 'r',
        match: { metadata: [{ name: 'key', prefix_match: 'a:' }, { name: 'cmd', safe_regex_match: { regex: 'GET|SET' }, invert_match: true }, { name: 'x' }] },
        route: { weighted_clusters: { clusters: [{ name: 'main', weight: 20 }, { name: 'b', weight: 80 }] } },
        request_mutation: [{ key: 'tenant', value: 'blue' }],
      });
    }), '/');
    const r = c.listeners[0].routeConfig.routes[0];
    assert.deepEqual(r.match.metadata.map((m) => [m.name, m.match, m.invert]), [
      ['key', { kind: 'prefix', value: 'a:' }, false],
      ['cmd', { kind: 'regex', value: 'GET|SET' }, true],
      ['x', { kind: 'present', value: true }, false],
    ]);
    assert.deepEqual(r.route, { kind: 'weighted_clusters', clusters: [{ name: 'main', weight: 20 }, { name: 'b', weight: 80 }] });
    assert.deepEqual(r.requestMutation, [{ key: 'tenant', value: 'blue' }]);
    assert.equal(c.clusters[1].connectTimeoutMs, 1500);
  });

  it('reads peak_ewma with its decay_time', () => {
    const c = parseConfig(variant((d) => { Object.assign(d.clusters[0], { lb_policy: 'PEAK_EWMA', peak_ewma: { decay_time: '30s' } }); }), '/');
    assert.equal(c.clusters[0].lbPolicy, 'peak_ewma');
    assert.equal(c.clusters[0].peakEwmaDecayMs, 30_000);
  });

  it('listeners may be left to LDS (xds.lds), and only then', () => {
    const c = validateConfig({ xds: { port: 15010, lds: true } }, '/');
    assert.deepEqual(c.listeners, []);
    assert.equal(c.xds?.lds, true);
    assert.equal(c.xds?.drainTimeoutMs, 5000);
    assert.throws(() => validateConfig({ xds: { port: 15010, ads: true } }, '/'), /listeners: must have at least one listener \(or xds\.lds/);
  });

  const invalid: Array<[what: string, edit: (d: any) => void, field: string, message: RegExp]> = [
    ['no listeners', (d) => { d.listeners = []; }, 'listeners', /at least one listener/],
    ['an empty retry_on', (d) => { d.listeners[0].route_config.routes[0].route.retry_policy = { retry_on: [] }; }, 'listeners[0].route_config.routes[0].route.retry_policy.retry_on', /must name at least one condition/],
    ['a timeout below the sweep resolution', (d) => { d.listeners[0].route_config.routes[0].route.timeout = '1ms'; }, 'listeners[0].route_config.routes[0].route.timeout', /at least 10ms/],
    ['an unknown retry condition', (d) => { d.listeners[0].route_config.routes[0].route.retry_policy = { retry_on: 'retriable-4xx' }; }, 'listeners[0].route_config.routes[0].route.retry_policy.retry_on', /unknown condition "retriable-4xx"/],
    ['port out of range', (d) => { d.listeners[0].port = 70000; }, 'listeners[0].port', /between 0 and 65535/],
    ['port not a number', (d) => { d.listeners[0].port = 'x'; }, 'listeners[0].port', /integer/],
    ['missing protocol', (d) => { delete d.listeners[0].protocol; }, 'listeners[0].protocol', /must be a string/],
    ['typo in a field name', (d) => { d.listeners[0].protocl = 'redis'; }, 'listeners[0].protocl', /unknown field/],
    ['unknown cluster in a route', (d) => { d.listeners[0].route_config.routes[0].route.cluster = 'nope'; }, 'listeners[0].route_config.routes[0].route.cluster', /unknown cluster "nope"/],
    ['both cluster and weighted_clusters', (d) => { d.listeners[0].route_config.routes[0].route.weighted_clusters = { clusters: [{ name: 'main', weight: 1 }] }; }, 'listeners[0].route_config.routes[0].route', /exactly one of/],
    ['all weights zero', (d) => { d.listeners[0].route_config.routes[0].route = { weighted_clusters: { clusters: [{ name: 'main', weight: 0 }] } }; }, 'listeners[0].route_config.routes[0].route.weighted_clusters.clusters', /not all be 0/],
    ['two matches in one matcher', (d) => { d.listeners[0].route_config.routes[0].match = { metadata: [{ name: 'k', exact_match: 'a', prefix_match: 'b' }] }; }, 'listeners[0].route_config.routes[0].match.metadata[0]', /give one match/],
    ['bad regex', (d) => { d.listeners[0].route_config.routes[0].match = { metadata: [{ name: 'k', safe_regex_match: { regex: '(' } }] }; }, 'listeners[0].route_config.routes[0].match.metadata[0].safe_regex_match.regex', /invalid RE2 regular expression/],
    ['duplicate cluster', (d) => { d.clusters.push(d.clusters[0]); }, 'clusters[1].name', /duplicate name "main"/],
    ['duplicate listener port', (d) => { d.listeners.push({ ...d.listeners[0], name: 'other' }); }, 'listeners[1].port', /duplicate address\/port/],
    ['cluster without endpoints', (d) => { d.clusters[0].endpoints = []; }, 'clusters[0].endpoints', /at least one endpoint/],
    ['bad duration', (d) => { d.clusters[0].connect_timeout = 'soon'; }, 'clusters[0].connect_timeout', /duration/],
    ['bad upstream_connection', (d) => { d.listeners[0].upstream_connection = 'pooled'; }, 'listeners[0].upstream_connection', /shared, per_client/],
    ['mutation key too long', (d) => { d.listeners[0].route_config.routes[0].request_mutation = [{ key: 'k'.repeat(20000), value: '' }]; }, 'listeners[0].route_config.routes[0].request_mutation[0].key', /at most 16384 bytes/],
    ['a peak_ewma decay_time of 0', (d) => { Object.assign(d.clusters[0], { lb_policy: 'peak_ewma', peak_ewma: { decay_time: '0s' } }); }, 'clusters[0].peak_ewma.decay_time', /at least 1ms/],
    ['bad log level', (d) => { d.log_level = 'loud'; }, 'log_level', /one of/],
  ];
  for (const [what, edit, field, message] of invalid) {
    it(`rejects ${what}, naming ${field}`, () => {
      assert.throws(() => parseConfig(variant(edit), '/'), (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.code, 'MELTEMI_CONFIG_INVALID');
        assert.equal(err.field, field);
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it('rejects YAML that does not parse', () => {
    assert.throws(() => parseConfig('listeners: [', '/'), (err: unknown) => err instanceof ConfigError && err.field === '(yaml)');
  });
});
