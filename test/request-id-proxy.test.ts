// A request-id protocol (the kv conformance codec) through meltemi: ids renumbered on shared
// upstream connections and restored on the way back, out-of-order responses, heartbeats answered
// locally in both directions, one-way messages, request mutation, and a trapping plugin that
// costs only the connection that made it trap.

import assert from 'node:assert/strict';
import type { Meltemi } from '../runtime/server';
import { RouteTable } from '../runtime/router/route-table';
import { kvFrame, kvFrames, KvDecoded } from './helpers/kv-frames';
import { KvServer } from './helpers/kv-server';
import { TEST_PLUGIN_DIR } from './helpers/paths';
import { adminGet, metricSum, portOf, RawClient, startProxy } from './helpers/proxy';

/** Splits what a raw client received into kv frames. */
function frames(raw: RawClient): KvDecoded[] {
  return kvFrames(raw.received);
}

async function untilFrames(raw: RawClient, n: number): Promise<KvDecoded[]> {
  await raw.until(() => frames(raw).length >= n);
  return frames(raw);
}

describe('request-id correlation through meltemi (kv codec)', function () {
  this.timeout(30_000);
  let server: KvServer;
  let proxy: Meltemi;
  let port: number;
  const raws: RawClient[] = [];
  const raw = () => {
    const r = new RawClient(port);
    raws.push(r);
    return r;
  };

  before(async () => {
    server = await KvServer.start('v1');
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(TEST_PLUGIN_DIR)} }
listeners:
  - name: kv
    port: 0
    protocol: kv
    route_config:
      routes:
        - name: tagged
          match: { metadata: [ { name: method, exact_match: tag } ] }
          route: { cluster: v1 }
          request_mutation: [ { key: tenant, value: blue } ]
        - name: default
          match: { metadata: [ { name: method, present_match: true } ] }
          route: { cluster: v1 }
clusters:
  - name: v1
    endpoints: [ { address: 127.0.0.1, port: ${server.port} } ]
`);
    port = portOf(proxy, 'kv');
  });

  after(async () => {
    for (const r of raws) r.destroy();
    await proxy?.stop();
    await server?.stop();
  });

  it('delivers responses as they arrive, each with the id the client chose', async () => {
    const c = raw();
    c.write(Buffer.concat([kvFrame(0, 100n, [['method', 'slow'], ['delay', '150']]), kvFrame(0, 200n, [['method', 'fast']])]));
    const got = await untilFrames(c, 2);
    assert.deepEqual(got.map((f) => [f.type, f.id, f.pairs.find(([k]) => k === 'method')?.[1]]), [[1, 200n, 'fast'], [1, 100n, 'slow']]);
  });

  it('renumbers requests on the shared upstream connection so equal client ids cannot collide', async () => {
    const [a, b] = [raw(), raw()];
    const seen = server.received.length;
    a.write(kvFrame(0, 1n, [['method', 'm'], ['who', 'a'], ['delay', '50']]));
    b.write(kvFrame(0, 1n, [['method', 'm'], ['who', 'b']]));
    const [ra] = await untilFrames(a, 1);
    const [rb] = await untilFrames(b, 1);
    assert.equal(ra.id, 1n);
    assert.equal(rb.id, 1n);
    assert.ok(ra.pairs.some(([k, v]) => k === 'who' && v === 'a'));
    assert.ok(rb.pairs.some(([k, v]) => k === 'who' && v === 'b'));
    const upstreamIds = server.received.slice(seen).map((f) => f.id);
    assert.equal(new Set(upstreamIds).size, 2, `distinct ids upstream: ${upstreamIds}`);
  });

  it('applies the route request_mutation', async () => {
    const c = raw();
    c.write(kvFrame(0, 5n, [['method', 'tag']]));
    const [r] = await untilFrames(c, 1);
    assert.ok(r.pairs.some(([k, v]) => k === 'tenant' && v === 'blue'), JSON.stringify(r.pairs));
  });

  it('answers heartbeats locally and forwards one-way messages without waiting for a reply', async () => {
    const c = raw();
    const seen = server.received.length;
    c.write(Buffer.concat([kvFrame(7, 9n, []), kvFrame(2, 10n, [['method', 'notify'], ['note', 'hi']]), kvFrame(0, 11n, [['method', 'm']])]));
    const got = await untilFrames(c, 2);
    assert.deepEqual(got.map((f) => [f.type, f.id]), [[7, 9n], [1, 11n]]);
    const upstream = server.received.slice(seen);
    assert.deepEqual(upstream.map((f) => f.type).sort(), [0, 2], 'the heartbeat stayed in the proxy; the one-way went through');
  });

  it('answers heartbeats the upstream sends on its connection', async () => {
    const c = raw();
    c.write(kvFrame(0, 1n, [['method', 'm']]));
    await untilFrames(c, 1);
    const seen = server.received.length;
    server.heartbeatAll(4242n);
    const deadline = Date.now() + 2000;
    while (!server.received.slice(seen).some((f) => f.type === 7 && f.id === 4242n) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(server.received.slice(seen).some((f) => f.type === 7 && f.flags === 1 && f.id === 4242n), 'heartbeat reply received upstream');
  });

  it('no matching route: a local error frame echoing the request id', async () => {
    const c = raw();
    c.write(kvFrame(0, 77n, [['no-method', 'x']]));
    const [r] = await untilFrames(c, 1);
    assert.equal(r.type, 8);
    assert.equal(r.id, 77n);
    assert.deepEqual(r.pairs, [['kind', '0'], ['message', 'meltemi: no route matched the request']]);
  });

  it('a route table swapped at runtime applies to the next request on an existing connection', async () => {
    const c = raw();
    c.write(kvFrame(0, 1n, [['method', 'm']]));
    assert.equal((await untilFrames(c, 1))[0].type, 1);
    const listener = proxy.listener('kv')!;
    const previous = listener.context.routes;
    listener.context.routes = new RouteTable({ name: 'kv', routes: [
      { name: 'gone', match: { metadata: [] }, route: { kind: 'cluster', cluster: 'not-yet-known' }, requestMutation: [] },
    ] }, 'kv', proxy.stats);
    try {
      c.write(kvFrame(0, 2n, [['method', 'm']]));
      const [, r] = await untilFrames(c, 2);
      assert.equal(r.type, 8);
      assert.equal(r.id, 2n);
      assert.deepEqual(r.pairs, [['kind', '1'], ['message', 'meltemi: unknown cluster "not-yet-known"']]);
    } finally {
      listener.context.routes = previous;
    }
  });

  it('a trap in the codec closes only that connection, after a local error; the instance is replaced', async () => {
    const healthy = raw();
    healthy.write(kvFrame(0, 1n, [['method', 'm'], ['delay', '100']]));
    const before = await adminGet(proxy.admin!.port, '/metrics');
    const bad = raw();
    bad.write(kvFrame(0, 2n, [['method', 'm'], ['trap', '']]));
    await bad.waitClosed();
    const [err] = frames(bad);
    assert.equal(err.type, 8);
    assert.equal(err.pairs.find(([k]) => k === 'kind')?.[1], '9');
    assert.match(err.pairs.find(([k]) => k === 'message')![1], /trap requested by the frame/);
    const [ok] = await untilFrames(healthy, 1);
    assert.equal(ok.type, 1, 'the request in flight on another connection was answered');
    healthy.write(kvFrame(0, 3n, [['method', 'm']]));
    assert.equal((await untilFrames(healthy, 2))[1].id, 3n, 'and that connection keeps working');
    const after = await adminGet(proxy.admin!.port, '/metrics');
    assert.equal(metricSum(after.body, 'meltemi_plugin_traps_total', { plugin: 'kv' }) - metricSum(before.body, 'meltemi_plugin_traps_total', { plugin: 'kv' }), 1);
    assert.equal(metricSum(after.body, 'meltemi_plugin_instance_recycles_total', { plugin: 'kv' }) - metricSum(before.body, 'meltemi_plugin_instance_recycles_total', { plugin: 'kv' }), 1);
  });

  it('upstream gone: waiting requests get local error frames with their ids', async () => {
    const c = raw();
    c.write(kvFrame(0, 31n, [['method', 'm'], ['delay', '1000']]));
    await new Promise((r) => setTimeout(r, 100));
    await server.stop();
    const [r] = await untilFrames(c, 1);
    assert.equal(r.type, 8);
    assert.equal(r.id, 31n);
    assert.equal(r.pairs.find(([k]) => k === 'kind')?.[1], '7');
  });
});
