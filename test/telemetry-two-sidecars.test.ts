// Two meltemi sidecars in a row, as in a mesh: a Dubbo consumer calls through the client's
// sidecar (outbound) and the provider's sidecar (inbound) to a hessian2 provider. Checked: the
// trace context a client sends comes out at the provider with the inbound hop as its parent;
// each sidecar exports its span to a real OTLP/gRPC receiver, chained parent to child; an
// unsampled context is passed on and exports nothing; and the metadata exchange lets each side
// label Istio's metrics with the other's workload.

import assert from 'node:assert/strict';
import type { Meltemi } from '../runtime/server';
import { DubboConsumer, DubboProvider, sayHello } from './helpers/dubbo-peers';
import { OtlpReceiver } from './helpers/otlp-receiver';
import { PLUGIN_DIR } from './helpers/paths';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';

const SERVICE_HOST = 'demo.shop.svc.cluster.local';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

describe('telemetry across two sidecars (Dubbo, tracing, metadata exchange)', function () {
  this.timeout(60_000);
  let provider: DubboProvider;
  let otlp: OtlpReceiver;
  let inbound: Meltemi;
  let outbound: Meltemi;
  let consumer: DubboConsumer;
  const seen: Array<Record<string, unknown>> = [];

  const sidecar = (name: string, workload: string, listener: string, cluster: string, port: number) => startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
telemetry:
  workload: { workload: ${workload}, namespace: shop, app: ${workload.split('-')[0]}, version: v1, cluster: east }
  tracing:
    sampling: 100
    service_name: ${name}
    flush_interval: 50ms
    otlp: { address: 127.0.0.1, port: ${otlp.port} }
listeners:
  - ${listener}
    port: 0
    protocol: dubbo
    metadata_exchange: true
    route_config:
      routes:
        - name: demo
          route: { cluster: "${cluster}" }
clusters:
  - name: "${cluster}"
    endpoints: [ { address: 127.0.0.1, port: ${port} } ]
`);

  before(async () => {
    otlp = await OtlpReceiver.start();
    provider = await DubboProvider.start('v1', (c) => {
      seen.push(c.attachments);
      return { value: `hello ${c.args[0]}` };
    });
    inbound = await sidecar('demo-sidecar', 'demo-v1', `name: inbound\n    traffic_direction: inbound\n    destination_service: ${SERVICE_HOST}`, 'inbound|20880||', provider.port);
    outbound = await sidecar('web-sidecar', 'web-v1', 'name: outbound', `outbound|20880||${SERVICE_HOST}`, portOf(inbound, 'inbound'));
    consumer = await DubboConsumer.connect(portOf(outbound, 'outbound'));
  });

  after(async () => {
    consumer?.close();
    await outbound?.stop();
    await inbound?.stop();
    await provider?.stop();
    await otlp?.stop();
  });

  it('a sampled context: the provider sees the inbound hop as parent; both spans reach the collector, chained', async () => {
    const r = await consumer.invoke(sayHello('ada', { traceparent: `00-${TRACE}-${CLIENT_SPAN}-01`, tracestate: 'vendor=x' }));
    assert.equal(r.value, 'hello ada');
    const spans = (await otlp.waitFor(2)).filter((s) => s.traceId === TRACE);
    assert.equal(spans.length, 2, JSON.stringify(otlp.spans));
    const client = spans.find((s) => s.service === 'web-sidecar')!;
    const server = spans.find((s) => s.service === 'demo-sidecar')!;
    assert.equal(client.kind, 3, 'the outbound span is a CLIENT span');
    assert.equal(server.kind, 2, 'the inbound span is a SERVER span');
    assert.equal(client.parentSpanId, CLIENT_SPAN, 'the outbound span\'s parent is the caller\'s span');
    assert.equal(server.parentSpanId, client.spanId, 'the inbound span\'s parent is the outbound span');
    const sent = String(seen.at(-1)!.traceparent);
    assert.equal(sent, `00-${TRACE}-${server.spanId}-01`, 'the provider sees the inbound span as its parent');
    assert.equal(seen.at(-1)!.tracestate, 'vendor=x');
    for (const s of [client, server]) {
      assert.equal(s.name, 'org.apache.dubbo.demo.DemoService/sayHello');
      assert.equal(s.attributes['rpc.system.name'], 'dubbo');
      assert.equal(s.attributes['rpc.method'], 'org.apache.dubbo.demo.DemoService/sayHello');
      assert.equal(s.attributes['rpc.response.status_code'], '0');
      assert.equal(s.status.code, 0, 'not an error');
    }
    assert.equal(client.attributes['server.port'], portOf(inbound, 'inbound'));
    assert.equal(client.attributes['meltemi.upstream_cluster'], `outbound|20880||${SERVICE_HOST}`);
  });

  it('an unsampled context is passed on with a new parent and exports nothing', async () => {
    const before = otlp.spans.length;
    const trace = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab';
    await consumer.invoke(sayHello('bob', { traceparent: `00-${trace}-${CLIENT_SPAN}-00` }));
    const sent = String(seen.at(-1)!.traceparent);
    assert.match(sent, new RegExp(`^00-${trace}-[0-9a-f]{16}-00$`));
    assert.notEqual(sent.split('-')[2], CLIENT_SPAN, 'each hop is the next one\'s parent');
    // A sampled call after it: its spans arrive, and none of the unsampled trace came before them.
    await consumer.invoke(sayHello('cy', { traceparent: `00-${'c'.repeat(32)}-${CLIENT_SPAN}-01` }));
    await otlp.waitFor(before + 2);
    assert.equal(otlp.spans.filter((s) => s.traceId === trace).length, 0);
  });

  it('a malformed traceparent starts a new trace (sampled here at 100 %), without its tracestate', async () => {
    await consumer.invoke(sayHello('dee', { traceparent: `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`, tracestate: 'vendor=stale' }));
    const sent = String(seen.at(-1)!.traceparent);
    assert.equal(seen.at(-1)!.tracestate, undefined, 'the state of a trace that was not followed is dropped');
    assert.match(sent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    assert.notEqual(sent.split('-')[1], '0'.repeat(32));
  });

  it('the metadata exchange: each side labels Istio\'s metrics with the other\'s workload', async () => {
    const out = (await adminGet(outbound.admin!.port, '/metrics')).body;
    const inn = (await adminGet(inbound.admin!.port, '/metrics')).body;
    const calls = metricSum(out, 'istio_requests_total', { reporter: 'source' });
    assert.ok(calls >= 4, out);
    assert.equal(metricSum(out, 'istio_requests_total', {
      reporter: 'source', source_workload: 'web-v1', source_app: 'web', destination_workload: 'demo-v1', destination_app: 'demo',
      destination_workload_namespace: 'shop', destination_cluster: 'east', destination_service: SERVICE_HOST,
      destination_service_name: 'demo', destination_service_namespace: 'shop', request_protocol: 'dubbo', response_code: '0',
    }), calls, 'the source side knows its destination\'s workload');
    assert.equal(metricSum(inn, 'istio_requests_total', {
      reporter: 'destination', source_workload: 'web-v1', source_canonical_service: 'web', destination_workload: 'demo-v1',
      destination_service: SERVICE_HOST, connection_security_policy: 'none',
    }), calls, 'the destination side knows its source\'s workload');
    assert.equal(metricSum(inn, 'istio_request_duration_milliseconds_count', { reporter: 'destination' }), calls);
  });

  it('the provider receives the client sidecar\'s identity; a forged one is decoded at most once per value, capped', async () => {
    const peer = String(seen.at(-1)!['x-envoy-peer-metadata']);
    assert.ok(peer.length > 0);
    // A client that forges peer metadata straight to the inbound sidecar: a garbage value is unknown.
    const direct = await DubboConsumer.connect(portOf(inbound, 'inbound'));
    try {
      const r = await direct.invoke(sayHello('eve', { 'x-envoy-peer-metadata': '!!!not base64 protobuf!!!' }));
      assert.equal(r.value, 'hello eve');
    } finally {
      direct.close();
    }
    const inn = (await adminGet(inbound.admin!.port, '/metrics')).body;
    assert.equal(metricSum(inn, 'istio_requests_total', { reporter: 'destination', source_workload: 'unknown' }), 1);
  });
});
