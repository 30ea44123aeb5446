// Dubbo consumers and providers (hessian.js, speaking Dubbo 2.x) through meltemi, with two
// provider instances: attachment routing (batchJob=true to the batch group), method routing,
// a 20/80 weighted split, request mutation seen by the provider, heartbeats in both directions,
// one-way calls, exceptions, large payloads and colliding request ids.

import assert from 'node:assert/strict';
import type { Meltemi } from '../runtime/server';
import { DubboConsumer, DubboProvider, Invocation, sayHello } from './helpers/dubbo-peers';
import { PLUGIN_DIR } from './helpers/paths';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';

const SERVICE = 'org.apache.dubbo.demo.DemoService';
const call = (method: string, desc: string, args: unknown[], attachments?: Record<string, string>): Invocation =>
  ({ path: SERVICE, method, desc, args, attachments });

function provider(name: string): Promise<DubboProvider> {
  return DubboProvider.start(name, (c) => {
    switch (c.method) {
      case 'sayHello': return { value: `hello ${c.args[0]} from ${name}` };
      case 'echoBytes': return { value: c.args[0] };
      case 'fail': return { error: `${name} refuses` };
      case 'nothing': return { value: null };
      case 'whoSees': return { value: String(c.attachments[c.args[0] as string] ?? '') };
      case 'slow': return new Promise((r) => setTimeout(() => r({ value: `${name}:${c.args[0]}` }), Number(c.args[1])));
      default: return { error: `no method ${c.method}` };
    }
  });
}

describe('dubbo through meltemi', function () {
  this.timeout(60_000);
  let v1: DubboProvider;
  let v2: DubboProvider;
  let proxy: Meltemi;
  const consumers: DubboConsumer[] = [];
  const consumer = async (listener = 'dubbo') => {
    const c = await DubboConsumer.connect(portOf(proxy, listener));
    consumers.push(c);
    return c;
  };

  before(async () => {
    [v1, v2] = await Promise.all([provider('v1'), provider('v2')]);
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: dubbo
    port: 0
    protocol: dubbo
    route_config:
      routes:
        - name: batch
          match: { metadata: [ { name: batchJob, exact_match: "true" } ] }
          route: { cluster: batch }
        - name: bytes
          match: { metadata: [ { name: method, exact_match: echoBytes } ] }
          route: { cluster: batch }
        - name: tenant
          match: { metadata: [ { name: method, exact_match: whoSees } ] }
          route: { cluster: user }
          request_mutation: [ { key: x-tenant, value: blue } ]
        - name: user
          match: { metadata: [ { name: interface, exact_match: ${SERVICE} } ] }
          route: { cluster: user }
  - name: weighted
    port: 0
    protocol: dubbo
    route_config:
      routes:
        - route: { weighted_clusters: { clusters: [ { name: user, weight: 20 }, { name: batch, weight: 80 } ] } }
clusters:
  - name: user
    endpoints: [ { address: 127.0.0.1, port: ${v1.port} } ]
  - name: batch
    endpoints: [ { address: 127.0.0.1, port: ${v2.port} } ]
`);
  });

  after(async () => {
    for (const c of consumers) c.close();
    await proxy?.stop();
    await Promise.all([v1?.stop(), v2?.stop()]);
  });

  it('routes on an attachment: batchJob=true goes to the batch group, the rest to the user group', async () => {
    const c = await consumer();
    const user = await c.invoke(sayHello('ana'));
    const batch = await c.invoke(sayHello('job', { batchJob: 'true' }));
    assert.equal(user.value, 'hello ana from v1');
    assert.equal(user.attachments.server, 'v1', 'response attachments pass through');
    assert.equal(batch.value, 'hello job from v2');
  });

  it('routes on the method; a 4 MB argument arrives intact', async () => {
    const c = await consumer();
    const data = Buffer.alloc(4 << 20, 0x5a);
    const r = await c.invoke(call('echoBytes', '[B', [data]));
    assert.ok(Buffer.isBuffer(r.value) && (r.value as Buffer).equals(data));
    assert.equal(r.attachments.server, 'v2');
  });

  it('request mutation adds an attachment the provider observes', async () => {
    const c = await consumer();
    assert.equal((await c.invoke(call('whoSees', 'Ljava/lang/String;', ['x-tenant']))).value, 'blue');
    assert.equal((await c.invoke(call('whoSees', 'Ljava/lang/String;', ['interface']))).value, SERVICE, 'existing attachments kept');
  });

  it('exceptions and null results reach the consumer; exceptions count as errors', async () => {
    const c = await consumer();
    const before = metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_request_errors_total', { listener: 'dubbo' });
    const r = await c.invoke(call('fail', '', []));
    assert.match(r.exception!, /v1 refuses/);
    assert.equal((await c.invoke(call('nothing', '', []))).value, undefined);
    const after = metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_request_errors_total', { listener: 'dubbo' });
    assert.equal(after - before, 1);
  });

  it('one-way calls are forwarded, not dropped', async () => {
    const c = await consumer();
    c.oneway(call('sayHello', 'Ljava/lang/String;', ['one-way']));
    await c.invoke(sayHello('after'));
    const deadline = Date.now() + 2000;
    while (!v1.calls.some((x) => x.oneway && x.args[0] === 'one-way') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(v1.calls.some((x) => x.oneway && x.args[0] === 'one-way'));
  });

  it('heartbeats: the proxy answers the consumer\'s and the provider\'s', async () => {
    const c = await consumer();
    const answeredUpstream = v1.heartbeatsAnswered;
    const reply = await c.heartbeat();
    assert.deepEqual([reply.event, reply.request, reply.status], [true, false, 20]);
    assert.equal(v1.heartbeatsAnswered, answeredUpstream, 'the consumer heartbeat did not travel upstream');
    await c.invoke(sayHello('warm')); // ensure an upstream connection to v1 exists
    const replies = v1.heartbeatRepliesReceived;
    v1.heartbeatAll(999n);
    const deadline = Date.now() + 2000;
    while (v1.heartbeatRepliesReceived === replies && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(v1.heartbeatRepliesReceived > replies, 'the provider heartbeat was answered');
  });

  it('consumers reusing the same request ids concurrently each get their own answer', async () => {
    const [a, b] = [await consumer(), await consumer()];
    const [ra, rb] = await Promise.all([a.invoke(call('slow', 'Ljava/lang/String;I', ['a', 50]), 7n), b.invoke(call('slow', 'Ljava/lang/String;I', ['b', 0]), 7n)]);
    assert.equal(ra.value, 'v1:a');
    assert.equal(rb.value, 'v1:b');
    const many = await Promise.all(Array.from({ length: 300 }, (_, i) => a.invoke(sayHello(`n${i}`))));
    many.forEach((r, i) => assert.equal(r.value, `hello n${i} from v1`));
  });

  it('weighted 20/80 over 2000 calls lands within ±5 points', async () => {
    const c = await consumer('weighted');
    const results = await Promise.all(Array.from({ length: 2000 }, (_, i) => c.invoke(sayHello(`w${i}`))));
    const share = results.filter((r) => r.attachments.server === 'v1').length / 2000;
    assert.ok(Math.abs(share - 0.2) <= 0.05, `v1 share ${share}`);
  });

  it('no route: an error response (SERVICE_NOT_FOUND) with the reason and the request id', async () => {
    const c = await consumer();
    const r = await c.invoke({ path: 'com.other.Service', method: 'x', desc: '', args: [] }, 4242n);
    assert.equal(r.status, 60);
    assert.equal(r.error, 'meltemi: no route matched the request');
  });
});
