// The security config and AuthorizationPolicy reader: every mistake names its field, nothing
// is half enforced; and Istio's matching rules, table by table.

import assert from 'node:assert/strict';
import { parseConfig } from '../runtime/config/load';
import { toInputConfig } from '../runtime/config/print';
import { Field } from '../runtime/config/field';
import { decide, readAuthorizationPolicy, type AuthorizationInput } from '../runtime/security/authorization-policy';
import { istioSni } from '../runtime/security/upstream-tls';
import { parseSpiffeId } from '../runtime/security/spiffe';
import { PLUGIN_DIR, ROOT } from './helpers/paths';

const base = (extra: string, listener = '', cluster = '') => `
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
${extra}
listeners:
  - { name: l, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: c } } ] }${listener} }
clusters:
  - { name: c, endpoints: [ { address: 127.0.0.1, port: 6379 } ]${cluster} }
`;
const CERTS = 'security: { certificates: { files: { cert_chain: a.pem, private_key: k.pem, trust_bundle: r.pem } } }';

describe('security config', () => {
  const refused: Array<[string, string, RegExp]> = [
    ['STRICT without certificates', base('', ', peer_authentication: STRICT'), /listeners\[0\]\.peer_authentication: needs security\.certificates/],
    ['cluster mTLS without certificates', base('', '', ', tls: { mode: ISTIO_MUTUAL }'), /clusters\[0\]\.tls: needs security\.certificates/],
    ['files and sds at once', base('security: { certificates: { files: { cert_chain: a, private_key: b, trust_bundle: c }, sds: true } }'), /security\.certificates: needs exactly one of files or sds/],
    ['an unknown TLS version', base(`${CERTS.slice(0, -2)}, min_tls_version: TLSv1.1 }`), /security\.min_tls_version: must be one of/],
    ['a SAN that is not a SPIFFE ID', base(CERTS, '', ', tls: { mode: ISTIO_MUTUAL, subject_alt_names: ["cache.local"] }'), /clusters\[0\]\.tls\.subject_alt_names\[0\]: must be a SPIFFE ID/],
    ['a CUSTOM action', base('security: { authorization: [ { name: x, spec: { action: CUSTOM } } ] }'), /security\.authorization\[0\]\.spec\.action: CUSTOM is not supported/],
    ['an HTTP host match', base('security: { authorization: [ { name: x, spec: { rules: [ { to: [ { operation: { hosts: [a] } } ] } ] } } ] }'), /security\.authorization\[0\]\.spec\.rules\[0\]\.to\[0\]\.operation\.hosts: names an HTTP Host/],
    ['a JWT principal', base('security: { authorization: [ { name: x, spec: { rules: [ { from: [ { source: { requestPrincipals: ["*"] } } ] } ] } } ] }'), /requestPrincipals: needs a JWT/],
    ['a condition key it cannot evaluate', base('security: { authorization: [ { name: x, spec: { rules: [ { when: [ { key: "request.auth.claims[iss]", values: [a] } ] } ] } } ] }'), /when\[0\]\.key: is not a key meltemi can evaluate/],
    ['a misspelled source field', base('security: { authorization: [ { name: x, spec: { rules: [ { from: [ { source: { principal: [a] } } ] } ] } } ] }'), /source\.principal: unknown field \(did you mean principals\?\)/],
    ['an empty value list', base('security: { authorization: [ { name: x, spec: { rules: [ { from: [ { source: { principals: [] } } ] } ] } } ] }'), /principals: must not be empty/],
    ['a bad CIDR', base('security: { authorization: [ { name: x, spec: { rules: [ { from: [ { source: { ipBlocks: ["10.0.0.0/40"] } } ] } ] } } ] }'), /ipBlocks\[0\]: has an invalid prefix length/],
  ];
  for (const [name, yaml, message] of refused) {
    it(`refuses ${name}, naming the field`, () => {
      assert.throws(() => parseConfig(yaml, ROOT), (err: Error) => message.test(err.message));
    });
  }

  it('prints the security it read as config that reads back the same', () => {
    const yaml = base(`${CERTS.slice(0, -2)}, trust_domains: [cluster.local], authorization: [ { name: a, spec: { action: DENY, rules: [ { to: [ { operation: { methods: [FLUSHALL] } } ] } ] } } ] }`,
      ', traffic_direction: inbound, peer_authentication: STRICT', ', tls: { mode: ISTIO_MUTUAL, sni: cache.local }');
    const config = parseConfig(yaml, ROOT);
    const again = parseConfig(JSON.stringify(toInputConfig(config)), ROOT);
    assert.deepEqual(again.security, config.security);
    assert.deepEqual(again.listeners[0].peerAuthentication, 'STRICT');
    assert.deepEqual(again.clusters[0].tls, config.clusters[0].tls);
  });
});

describe('AuthorizationPolicy matching (Istio semantics)', () => {
  const input = (over: Partial<Omit<AuthorizationInput, 'metadata'>> & { meta?: Record<string, string> } = {}): AuthorizationInput => ({
    principal: 'cluster.local/ns/shop/sa/frontend', namespace: 'shop', sourceIp: '10.1.2.3', remoteIp: '10.1.2.3', destinationIp: '10.9.9.9', destinationPort: 6379, sni: '',
    ...over,
    metadata: (k: string) => (over.meta ?? { command: 'GET', key: 'user:1' })[k],
  });
  const policy = (spec: unknown, name = 'p') => readAuthorizationPolicy(new Field('spec', spec), name);
  const cases: Array<[string, unknown[], ReturnType<typeof input>, boolean]> = [
    ['no policy allows', [], input(), true],
    ['an ALLOW policy without rules allows nothing', [{}], input(), false],
    ['rules: [{}] allows everything', [{ rules: [{}] }], input(), true],
    ['a DENY without rules denies nothing', [{ action: 'DENY' }], input(), true],
    ['a suffix principal', [{ rules: [{ from: [{ source: { principals: ['*/sa/frontend'] } }] }] }], input(), true],
    ['"*" needs a principal (plaintext has none)', [{ rules: [{ from: [{ source: { principals: ['*'] } }] }] }], input({ principal: '' }), false],
    ['notNamespaces excludes', [{ rules: [{ from: [{ source: { notNamespaces: ['shop'] } }] }] }], input(), false],
    ['ipBlocks by CIDR', [{ rules: [{ from: [{ source: { ipBlocks: ['10.1.0.0/16'] } }] }] }], input(), true],
    ['ipBlocks of an IPv4-mapped peer', [{ rules: [{ from: [{ source: { ipBlocks: ['10.1.0.0/16'] } }] }] }], input({ sourceIp: '::ffff:10.1.2.3' }), true],
    ['ports', [{ rules: [{ to: [{ operation: { ports: ['6380'] } }] }] }], input(), false],
    ['from AND to: both must match', [{ rules: [{ from: [{ source: { namespaces: ['shop'] } }], to: [{ operation: { methods: ['SET'] } }] }] }], input(), false],
    ['to entries are ORed', [{ rules: [{ to: [{ operation: { methods: ['SET'] } }, { operation: { methods: ['GET'] } }] }] }], input(), true],
    ['when notValues', [{ rules: [{ when: [{ key: 'request.metadata[key]', notValues: ['user:*'] }] }] }], input(), false],
    ['DENY wins over ALLOW', [{ rules: [{}] }, { action: 'DENY', rules: [{ when: [{ key: 'source.namespace', values: ['shop'] }] }] }], input(), false],
    ['methods read `method` before `command`', [{ rules: [{ to: [{ operation: { methods: ['sayHello'] } }] }] }], input({ meta: { method: 'sayHello', command: 'GET' } }), true],
  ];
  for (const [name, specs, req, allowed] of cases) {
    it(`${name}: ${allowed ? 'allowed' : 'denied'}`, () => {
      assert.equal(decide(specs.map((s, i) => policy(s, `p${i}`)), req).allowed, allowed);
    });
  }

  it('SPIFFE IDs and Istio SNI', () => {
    assert.deepEqual(parseSpiffeId('spiffe://cluster.local/ns/a/sa/b'), { uri: 'spiffe://cluster.local/ns/a/sa/b', trustDomain: 'cluster.local', path: '/ns/a/sa/b', namespace: 'a', serviceAccount: 'b' });
    for (const bad of ['spiffe://Cluster.local/x', 'spiffe://td/a//b', 'spiffe://td/a/../b', 'https://td/x']) assert.equal(parseSpiffeId(bad), undefined, bad);
    assert.equal(istioSni('outbound|9080|v1|reviews.default.svc.cluster.local'), 'outbound_.9080_.v1_.reviews.default.svc.cluster.local');
    assert.equal(istioSni('my-cluster'), undefined);
  });
});
