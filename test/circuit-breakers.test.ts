// Circuit breakers per cluster, against a real redis-server and an upstream that never answers:
// past max_requests a request is answered over-limit at once (not queued behind the stuck ones);
// at max_connections clients share what is open, and one that would need another connection is
// refused; the thresholds reach the proxy from a DestinationRule's connectionPool through the
// control plane's CDS as istiod derives them.

import assert from 'node:assert/strict';
import { buildConfig } from '../runtime/control-plane/route-builder';
import { readResource, Resource } from '../runtime/control-plane/resources';
import { useFaultBed } from './helpers/fault-bed';
import { PLUGIN_DIR } from './helpers/paths';
import { parseAllDocuments } from 'yaml';

describe('circuit breakers', function () {
  this.timeout(30_000);
  const bed = useFaultBed();

  it('past max_requests, a request is answered over-limit at once while the stuck ones wait', async () => {
    const proxy = await bed.start(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: stuck, timeout: 5s } } ] } }
clusters:
  - { name: stuck, circuit_breakers: { max_requests: 10 }, endpoints: [ { address: 127.0.0.1, port: ${bed.hole.port} } ] }
`);
    const c = bed.client();
    const stuck = Array.from({ length: 10 }, (_, i) => c.get(`k${i}`).catch((e: Error) => e.message));
    await new Promise((r) => setTimeout(r, 100)); // the ten reach the upstream
    // Another client: Redis answers a connection in order, so c's own reply would wait behind its ten.
    const other = bed.client();
    await other.ping().catch(() => undefined); // connected (PING is routed too: it may be refused)
    const t0 = performance.now();
    const over = await other.get('one-more').catch((e: Error) => e.message);
    assert.match(String(over), /circuit_breakers\.max_requests 10/);
    assert.ok(performance.now() - t0 < 1000, 'answered at once, not after the stuck ones');
    assert.ok(proxy.clusters.get('stuck')!.stats.pendingOverflow >= 1);
    c.disconnect();
    await Promise.all(stuck);
    void other;
  });

  it('at max_connections, clients that need a connection of their own are refused; shared ones carry on', async () => {
    const proxy = await bed.start(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: main } } ] } }
clusters:
  - { name: main, circuit_breakers: { max_connections: 2 }, endpoints: [ { address: 127.0.0.1, port: ${bed.redis.port} } ] }
`);
    const shared = bed.client();
    assert.equal(await shared.set('a', '1'), 'OK');
    // SELECT pins a client to a connection of its own: the second pinned client is one too many.
    const pinned = [bed.client(), bed.client()];
    assert.equal(await pinned[0].select(1), 'OK');
    const refused = await pinned[1].select(1).catch((e: Error) => e.message);
    assert.match(String(refused), /circuit_breakers\.max_connections 2/);
    assert.equal(await shared.get('a'), '1', 'the shared connection still serves');
    assert.equal(proxy.clusters.get('main')!.stats.cxOverflow, 1);
  });

  it('max_connections below the number of endpoints: requests share the connections open, none refused', async () => {
    const other = await (await import('./helpers/redis-server')).RedisServer.start();
    try {
      await bed.start(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: main } } ] } }
clusters:
  - { name: main, circuit_breakers: { max_connections: 1 }, endpoints: [ { address: 127.0.0.1, port: ${bed.redis.port} }, { address: 127.0.0.1, port: ${other.port} } ] }
`);
      const c = bed.client();
      for (let i = 0; i < 20; i++) assert.equal(await c.ping(), 'PONG');
      assert.equal(bed.proxy!.clusters.get('main')!.stats.cxOverflow, 0);
    } finally {
      await other.stop();
    }
  });

  it('a DestinationRule\'s connectionPool becomes the cluster\'s thresholds (as istiod maps it)', () => {
    const docs = parseAllDocuments(`
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: { name: s }
spec: { hosts: [ s.demo ], ports: [ { number: 6379, name: tcp-metaprotocol-redis } ], endpoints: [ { address: 127.0.0.1 } ] }
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: { name: s }
spec:
  host: s.demo
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 7, connectTimeout: 250ms }, http: { http1MaxPendingRequests: 5, http2MaxRequests: 100, maxRetries: 3 } }
    loadBalancer: { simple: LEAST_REQUEST }
`).map((d, i) => readResource(d.toJSON(), `document ${i}`)).filter((r): r is Resource => r !== undefined);
    const c = buildConfig(docs).clusters[0];
    assert.deepEqual(c.circuitBreakers, { maxConnections: 7, maxPendingRequests: 5, maxRequests: 100, maxRetries: 3 });
    assert.equal(c.connectTimeoutMs, 250);
    assert.equal(c.lbPolicy, 'least_request');
  });
});
