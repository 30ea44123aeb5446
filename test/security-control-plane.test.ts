// AuthorizationPolicies from `meltemi control-plane`, served over mTLS: the control plane reads
// Istio AuthorizationPolicy files and serves each proxy the ones that select it (namespace,
// labels, the root namespace); the proxy's xDS client presents its workload certificate, and a
// policy edited in the file applies to the next request on open connections.

import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { ControlPlane } from '../runtime/control-plane/control-plane';
import { DirectorySource } from '../runtime/control-plane/resource-source';
import type { Meltemi } from '../runtime/server';
import { CaptureLogger } from './helpers/capture-logger';
import { clientSidecarYaml, meshRedis, serverSidecarYaml } from './helpers/mtls-sidecars';
import { portOf, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';
import { TestCa, writeWorkloadFiles } from './helpers/test-ca';

const CACHE = 'spiffe://cluster.local/ns/data/sa/cache';
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const REPORTS = 'spiffe://cluster.local/ns/analytics/sa/reports';
const CONTROL_PLANE = 'spiffe://cluster.local/ns/istio-system/sa/meltemi-control-plane';

const policy = (name: string, namespace: string, spec: string) => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: ${namespace} }
spec:
${spec}
`;

const FRONTEND_ONLY = policy('cache-clients', 'data', `  selector: { matchLabels: { app: cache } }
  action: ALLOW
  rules:
    - from: [ { source: { principals: ["cluster.local/ns/shop/sa/frontend"] } } ]`);
const AND_ANALYTICS = policy('cache-clients', 'data', `  selector: { matchLabels: { app: cache } }
  action: ALLOW
  rules:
    - from: [ { source: { principals: ["cluster.local/ns/shop/sa/frontend"] } } ]
    - from: [ { source: { namespaces: ["analytics"] } } ]`);
// Selects another workload: never reaches the cache's sidecar.
const OTHER_APP = policy('deny-all-of-other', 'data', `  selector: { matchLabels: { app: other } }
  action: DENY
  rules: [ {} ]`);
// The root namespace's policies apply everywhere.
const MESH_WIDE = policy('no-flushall', 'istio-system', `  action: DENY
  rules:
    - to: [ { operation: { methods: ["FLUSHALL", "FLUSHDB"] } } ]`);

describe('AuthorizationPolicies from the control plane, over mTLS', function () {
  this.timeout(60_000);
  let ca: TestCa;
  let dir: string;
  let cp: ControlPlane;
  let redis: RedisServer;
  const proxies: Meltemi[] = [];
  const clients: Redis[] = [];
  let server: Meltemi;
  let frontend: Redis;
  let reports: Redis;

  const files = (spiffe: string, dns: string[] = []) => writeWorkloadFiles(mkdtempSync(join(tmpdir(), 'meltemi-id-')), ca.issue('w', { uri: [spiffe], dns }), ca.root);
  const write = (name: string, content: string) => {
    writeFileSync(join(dir, `${name}.tmp`), content);
    renameSync(join(dir, `${name}.tmp`), join(dir, name));
  };
  const sidecar = async (spiffe: string) => {
    const p = await startProxy(clientSidecarYaml(files(spiffe), portOf(server, 'strict')));
    proxies.push(p);
    const c = meshRedis(portOf(p, 'out'));
    clients.push(c);
    await c.connect();
    return c;
  };
  /** Retries `run` until it settles as `allowed` says (a pushed policy applies within moments). */
  const until = async (run: () => Promise<unknown>, allowed: boolean) => {
    const t0 = Date.now();
    for (;;) {
      const outcome = await run().then(() => true, (e: Error) => (/RBAC: access denied/.test(e.message) ? false : Promise.reject(e)));
      if (outcome === allowed) return;
      if (Date.now() - t0 > 10_000) throw new Error(`still ${outcome ? 'allowed' : 'denied'}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  before(async () => {
    ca = TestCa.create();
    dir = mkdtempSync(join(tmpdir(), 'meltemi-cp-authz-'));
    write('cache.yaml', FRONTEND_ONLY);
    write('other.yaml', OTHER_APP);
    write('mesh.yaml', MESH_WIDE);
    const cpFiles = files(CONTROL_PLANE, ['localhost']);
    cp = new ControlPlane(new DirectorySource(dir, 20), new CaptureLogger());
    const cpPort = await cp.start('127.0.0.1', 0, cpFiles);
    redis = await RedisServer.start();
    server = await startProxy(serverSidecarYaml(files(CACHE), redis.port, '').replace('listeners:', `xds:
  address: 127.0.0.1
  port: ${cpPort}
  authorization: true
  initial_fetch_timeout: 10s
  tls: { subject_alt_names: ["${CONTROL_PLANE}"] }
  node: { id: cache-0, metadata: { NAMESPACE: data, LABELS: '{"app":"cache"}' } }
listeners:`));
    proxies.push(server);
    frontend = await sidecar(FRONTEND);
    reports = await sidecar(REPORTS);
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(proxies.map((p) => p.stop()));
    cp?.stop();
    await redis?.stop();
    ca?.remove();
  });

  it('applies the policies that select this proxy from the first request: its namespace and labels, and the root namespace', async () => {
    assert.equal(await frontend.set('k', 'v'), 'OK');
    await assert.rejects(reports.get('k'), /RBAC: access denied/);
    await assert.rejects(frontend.flushall(), /RBAC: access denied/);
    assert.deepEqual(server.security.policies.dynamic.map((p) => p.name).sort(), ['data/cache-clients', 'istio-system/no-flushall']);
  });

  it('an edited policy applies to the next request on open connections', async () => {
    write('cache.yaml', AND_ANALYTICS);
    await until(() => reports.get('k'), true);
    assert.equal(await reports.get('k'), 'v');
    write('cache.yaml', FRONTEND_ONLY);
    await until(() => reports.get('k'), false);
  });

  it('a proxy without a workload certificate is not served by the mTLS control plane', async () => {
    const plain = await startProxy(serverSidecarYaml(files(CACHE), redis.port, '').replace('listeners:', `xds:
  address: 127.0.0.1
  port: ${cp.port}
  authorization: true
  initial_fetch_timeout: 300ms
listeners:`));
    proxies.push(plain);
    assert.equal(plain.ads!.connected, false);
    assert.equal(plain.security.policies.dynamic.length, 0);
  });
});
