// The control plane: resources to routes and clusters as Aeraki builds them, bad resources
// reported by file and field and skipped, and the result served to meltemi over RDS and ADS.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { buildConfig, metaProtocolOf } from '../runtime/control-plane/route-builder';
import { readResource, Resource } from '../runtime/control-plane/resources';
import { DirectorySource } from '../runtime/control-plane/resource-source';
import { DR, SE } from './helpers/istio-resources';

function resources(yaml: string): Resource[] {
  return parseAllDocuments(yaml).map((d, i) => readResource(d.toJSON(), `document ${i}`)).filter((r): r is Resource => r !== undefined);
}

describe('control plane: building routes the way Aeraki does', () => {
  const host = 'thrift.demo.svc.cluster.local';
  const eps = [{ address: '10.0.0.1', port: 9091, version: 'v1' }, { address: '10.0.0.2', port: 9092, version: 'v2' }];

  it('port names select MetaProtocol ports', () => {
    assert.deepEqual(['tcp-metaprotocol-dubbo', 'tcp-metaprotocol-thrift-hello', 'tcp-dubbo', 'tcp-metaprotocol', 'http'].map(metaProtocolOf), ['dubbo', 'thrift', undefined, undefined, undefined]);
  });

  it('without a MetaRouter: one default route per port to outbound|port||host, with the DR hash key', () => {
    const built = buildConfig(resources(SE(host, 9090, 'thrift', eps) + '---' + DR(host, 'method')));
    assert.deepEqual([...built.routes.keys()], [`${host}_9090`]);
    assert.deepEqual(built.routes.get(`${host}_9090`)!.routes, [{ name: 'default', match: { metadata: [] }, route: { kind: 'cluster', cluster: `outbound|9090||${host}`, hashPolicy: ['method'] }, requestMutation: [] }]);
    assert.deepEqual(built.clusters.map((c) => [c.name, c.endpoints.map((e) => `${e.address}:${e.port}`)]), [
      [`outbound|9090||${host}`, ['10.0.0.1:9091', '10.0.0.2:9092']],
      [`outbound|9090|v1|${host}`, ['10.0.0.1:9091']],
      [`outbound|9090|v2|${host}`, ['10.0.0.2:9092']],
    ]);
  });

  it('MetaRouter routes: attributes (sorted; null and regex "*" are presence; {} skipped), subsets, weights, mirror, mutation', () => {
    const built = buildConfig(resources(SE(host, 9090, 'thrift', eps) + '---' + DR(host) + `---
apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: { name: r }
spec:
  hosts: [ ${host} ]
  routes:
    - name: split
      match: { attributes: { method: { exact: sayHello }, caller: { prefix: batch- }, user: null, trace: { regex: "*" }, ignored: {} } }
      route:
        - { destination: { host: ${host}, subset: v1 }, weight: 20 }
        - { destination: { host: ${host}, subset: v2 }, weight: 80 }
      mirror: { host: ${host}, subset: v2 }
      mirrorPercentage: { value: 50 }
      requestMutation: [ { key: foo, value: bar } ]
    - name: rest
      route: [ { destination: { host: ${host}, subset: v1, port: { number: 9999 } } } ]
`));
    const [split, rest] = built.routes.get(`${host}_9090`)!.routes;
    assert.deepEqual(split.match.metadata.map((m) => [m.name, m.match]), [
      ['caller', { kind: 'prefix', value: 'batch-' }], ['method', { kind: 'exact', value: 'sayHello' }],
      ['trace', { kind: 'present', value: true }], ['user', { kind: 'present', value: true }],
    ]);
    assert.deepEqual(split.route, {
      kind: 'weighted_clusters', clusters: [{ name: `outbound|9090|v1|${host}`, weight: 20 }, { name: `outbound|9090|v2|${host}`, weight: 80 }],
      mirrors: [{ cluster: `outbound|9090|v2|${host}`, percentage: 50 }],
    });
    assert.deepEqual(split.requestMutation, [{ key: 'foo', value: 'bar' }]);
    assert.deepEqual(rest.route, { kind: 'cluster', cluster: `outbound|9999|v1|${host}` });
  });

  const invalid: Array<[string, string, RegExp]> = [
    ['two hosts', 'kind: MetaRouter\napiVersion: metaprotocol.aeraki.io/v1alpha1\nmetadata: { name: x }\nspec: { hosts: [a, b], routes: [] }', /document 0\.spec\.hosts: must name exactly one host/],
    ['weights not adding to 100', `kind: MetaRouter\napiVersion: metaprotocol.aeraki.io/v1alpha1\nmetadata: { name: x }\nspec: { hosts: [a], routes: [ { route: [ { destination: { host: a }, weight: 10 }, { destination: { host: a }, weight: 10 } ] } ] }`, /routes\[0\]\.route: weights must add up to 100/],
    ['a bad port number', 'kind: ServiceEntry\napiVersion: networking.istio.io/v1\nmetadata: { name: x }\nspec: { hosts: [a], ports: [ { number: 0, name: p } ] }', /spec\.ports\[0\]\.number: must be between 1 and 65535/],
    ['a wrong apiVersion', 'kind: MetaRouter\napiVersion: networking.istio.io/v1\nmetadata: { name: x }\nspec: { hosts: [a] }', /apiVersion: must be metaprotocol\.aeraki\.io/],
  ];
  for (const [what, yaml, message] of invalid) {
    it(`rejects ${what}, naming the field`, () => {
      assert.throws(() => resources(yaml), message);
    });
  }

  it('the directory source reports a bad resource by file and field and keeps the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-cp-'));
    writeFileSync(join(dir, '10-service.yaml'), SE(host, 9090, 'thrift', eps));
    writeFileSync(join(dir, '20-bad.yaml'), 'kind: MetaRouter\napiVersion: metaprotocol.aeraki.io/v1alpha1\nmetadata: { name: bad }\nspec: { hosts: [] }\n');
    writeFileSync(join(dir, '30-broken.yml'), 'kind: [unclosed\n');
    writeFileSync(join(dir, 'notes.txt'), 'not a resource');
    const snap = await new DirectorySource(dir).read();
    assert.deepEqual(snap.resources.map((r) => r.resource.kind), ['ServiceEntry']);
    assert.equal(snap.errors.length, 2);
    assert.match(snap.errors[0].file, /20-bad\.yaml$/);
    assert.match(snap.errors[0].message, /document 0\.spec\.hosts: must name exactly one host/);
    assert.match(snap.errors[1].file, /30-broken\.yml$/);
  });
});
