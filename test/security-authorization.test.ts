// Authorization by principal and metadata on an inbound sidecar, with Istio AuthorizationPolicy
// rules, over real mTLS from two client sidecars of different identities. A denied request gets
// the protocol's own error (a Redis error reply) and the connection goes on.

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';
import { TestCa, writeWorkloadFiles } from './helpers/test-ca';
import { clientSidecarYaml, meshRedis, serverSidecarYaml } from './helpers/mtls-sidecars';

const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const REPORTS = 'spiffe://cluster.local/ns/analytics/sa/reports';
const CACHE = 'spiffe://cluster.local/ns/data/sa/cache';

const POLICIES = `
  authorization:
    - name: data/cache-readers
      spec:
        action: ALLOW
        rules:
          - from: [ { source: { principals: ["cluster.local/ns/shop/sa/frontend"] } } ]
          - from: [ { source: { namespaces: ["analytics"] } } ]
            to: [ { operation: { methods: ["GET", "MGET", "PING"] } } ]
    - name: data/no-admin-keys
      spec:
        action: DENY
        rules:
          - when: [ { key: "request.metadata[key]", values: ["admin:*"] } ]
`;

describe('authorization by principal and metadata (AuthorizationPolicy)', function () {
  this.timeout(60_000);
  let ca: TestCa;
  let redis: RedisServer;
  let server: Meltemi;
  const proxies: Meltemi[] = [];
  const clients: Redis[] = [];
  let frontend: Redis;
  let reports: Redis;
  let plaintext: Redis;

  const client = async (port: number) => {
    const c = meshRedis(port);
    clients.push(c);
    await c.connect();
    return c;
  };
  const sidecar = async (spiffe: string) => {
    const files = writeWorkloadFiles(mkdtempSync(join(tmpdir(), 'meltemi-id-')), ca.issue('client', { uri: [spiffe] }), ca.root);
    const p = await startProxy(clientSidecarYaml(files, portOf(server, 'strict')));
    proxies.push(p);
    return client(portOf(p, 'out'));
  };

  before(async () => {
    ca = TestCa.create();
    redis = await RedisServer.start();
    const files = writeWorkloadFiles(mkdtempSync(join(tmpdir(), 'meltemi-id-')), ca.issue('cache', { uri: [CACHE] }), ca.root);
    server = await startProxy(serverSidecarYaml(files, redis.port, POLICIES));
    proxies.push(server);
    frontend = await sidecar(FRONTEND);
    reports = await sidecar(REPORTS);
    plaintext = await client(portOf(server, 'permissive'));
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(proxies.map((p) => p.stop()));
    await redis?.stop();
    ca?.remove();
  });

  const cases: Array<{ who: string; run: () => Promise<unknown>; allowed: boolean }> = [
    { who: 'frontend SET (ALLOW by principal)', run: () => frontend.set('user:1', 'a'), allowed: true },
    { who: 'reports GET (ALLOW by namespace and method)', run: () => reports.get('user:1'), allowed: true },
    { who: 'reports SET (its namespace may only read)', run: () => reports.set('user:1', 'b'), allowed: false },
    { who: 'frontend GET admin:* (DENY by key prefix wins over ALLOW)', run: () => frontend.get('admin:root'), allowed: false },
    { who: 'a plaintext client (no principal matches)', run: () => plaintext.get('user:1'), allowed: false },
  ];
  for (const t of cases) {
    it(`${t.allowed ? 'allows' : 'denies'} ${t.who}`, async () => {
      if (t.allowed) await t.run();
      else await assert.rejects(t.run(), /RBAC: access denied/);
    });
  }

  it('a denied request leaves the connection working, and decisions are counted per listener', async () => {
    await assert.rejects(reports.set('user:2', 'x'), /RBAC: access denied/);
    assert.equal(await reports.get('user:1'), 'a');
    const m = (await adminGet(server.admin!.port, '/metrics')).body;
    assert.ok(metricSum(m, 'meltemi_authorization_decisions_total', { listener: 'strict', decision: 'deny' }) >= 3);
    assert.ok(metricSum(m, 'meltemi_authorization_decisions_total', { listener: 'strict', decision: 'allow' }) >= 3);
    assert.ok(metricSum(m, 'istio_requests_total', { reporter: 'destination', response_flags: 'UAEX' }) + metricSum(m, 'istio_requests_total', { reporter: 'destination', response_code: '1' }) >= 3);
  });
});
