// Regular expressions meet network data only through RE2 (linear time): a pattern that makes a
// backtracking engine explode, `(a+)+$`, costs microseconds per request. The dialect is RE2's
// everywhere a pattern is accepted: static config, RDS routes, the control plane's resources.

import assert from 'node:assert/strict';
import net from 'node:net';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../runtime/config/load';
import { readResource } from '../../runtime/control-plane/resources';
import { decodeTunnel } from '../../runtime/xds/route-tunnel';
import { ConfigError } from '../../runtime/core/errors';
import { AttackBench } from './attack-harness';

const configWith = (regex: string) => `
listeners:
  - name: l
    port: 0
    protocol: redis
    route_config: { routes: [ { match: { metadata: [ { name: key, safe_regex_match: { regex: ${JSON.stringify(regex)} } } ] }, route: { cluster: c } } ] }
clusters: [ { name: c, endpoints: [ { address: 127.0.0.1, port: 1 } ] } ]
`;
const metaRouter = (regex: string) => `
apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: { name: r, namespace: ns }
spec:
  hosts: [ svc.ns.svc.cluster.local ]
  routes:
    - match: { attributes: { method: { regex: ${JSON.stringify(regex)} } } }
      route: [ { destination: { host: svc.ns.svc.cluster.local } } ]
`;
const rdsWith = (regex: string) => ({
  name: 'x',
  virtual_hosts: [{ routes: [{ match: { headers: [{ name: 'key', string_match: { safe_regex: { regex }, match_pattern: 'safe_regex' }, header_match_specifier: 'string_match' }] }, route: { cluster: 'c' } }] }],
});

// [pattern, valid in RE2]
const DIALECT: Array<[string, boolean]> = [
  ['(?i)user-[0-9]+', true],
  ['(?P<id>[0-9]+)-x', true],
  ['(a+)+$', true],
  ['(?=lookahead)', false],
  ['(?<=behind)x', false],
  ['(a)\\1', false],
  ['[unclosed', false],
  ['x{1001}', false], // past RE2's repeat limit
  ['[a-c]{900}x[a-c]{900}', false], // RE2 program too large
];

describe('containment: regular expressions are RE2, linear in the data', () => {
  for (const [pattern, valid] of DIALECT) {
    const label = pattern.length > 30 ? `${pattern.slice(0, 30)}…` : pattern;
    it(`${valid ? 'accepts' : 'rejects'} ${label} in static config, RDS and MetaRouter alike`, () => {
      const attempts: Array<[string, () => unknown, RegExp]> = [
        ['static', () => parseConfig(configWith(pattern), '/'), /listeners\[0\]\.route_config\.routes\[0\]\.match\.metadata\[0\]\.safe_regex_match\.regex: /],
        ['rds', () => decodeTunnel(rdsWith(pattern)), /virtual_hosts\[0\]\.routes\[0\]\.match\.headers\[0\]\.string_match\.safe_regex\.regex: /],
        ['control plane', () => readResource(parseAllDocuments(metaRouter(pattern))[0].toJSON(), 'document 0'), /routes\[0\]\.match\.attributes\.method\.regex: /],
      ];
      for (const [where, run, field] of attempts) {
        if (valid) {
          assert.doesNotThrow(run, `${where} should accept ${pattern}`);
        } else {
          assert.throws(run, (err: Error) => err instanceof ConfigError && field.test(err.message) && /RE2|program size|pattern/.test(err.message), `${where} should reject ${pattern}`);
        }
      }
    });
  }
});

describe('containment: a backtracking pattern on hostile keys', function () {
  this.timeout(60_000);
  let bench: AttackBench;

  before(async () => {
    bench = await AttackBench.start({
      portNames: ['regex'],
      listeners: (p) => `  - name: regex
    port: ${p.regex}
    protocol: redis
    route_config: { routes: [ { match: { metadata: [ { name: key, safe_regex_match: { regex: "(a+)+$" } } ] }, route: { cluster: target } }, { route: { cluster: target } } ] }`,
    });
  });

  after(async () => {
    await bench?.kill();
  });

  it('keys built to explode backtracking (33 bytes to 60 KB) are routed in linear time while a healthy client keeps its p99', async () => {
    let answered = 0;
    await bench.underAttack(async () => {
      const sock = net.connect(bench.ports.regex, '127.0.0.1');
      let got = '';
      sock.on('data', (d) => { got += d.toString('latin1'); });
      // Short keys (20 s each under V8's engine), keys just under the 4 KiB subject cap, and
      // 60 KB keys past it (not matched: no regex work at all).
      const keys = [33, 40, 1000, 4000, 60_000].map((n) => `${'a'.repeat(n)}!`);
      for (let round = 0; round < 20; round++) for (const k of keys) sock.write(`*2\r\n$3\r\nGET\r\n$${k.length}\r\n${k}\r\n`);
      const want = 20 * keys.length;
      const deadline = Date.now() + 20_000;
      while ((got.match(/\$-1\r\n/g) ?? []).length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      answered = (got.match(/\$-1\r\n/g) ?? []).length;
      sock.destroy();
    });
    assert.equal(answered, 100);
  });
});
