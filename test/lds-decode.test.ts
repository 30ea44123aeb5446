// Decoding LDS Listener resources, without sockets: Aeraki's EnvoyFilter shape (a TypedStruct of
// protobuf JSON) reads the same as MetaProtocolProxy bytes; protobuf JSON is read strictly; the
// control plane's listeners, decoded by the agent, give back the MetaRouter's rate limit.

import assert from 'node:assert/strict';
import { buildListeners } from '../runtime/control-plane/listener-builder';
import { readResource, Resource } from '../runtime/control-plane/resources';
import { parseAllDocuments } from 'yaml';
import { envoyType, fromPlain, toPlain, TYPE_META_PROTOCOL_PROXY, TYPED_STRUCT_URLS } from '../runtime/xds/envoy-protos';
import { decodeListener } from '../runtime/xds/listener-decode';
import { fromProtoJson, jsonToStruct, structToJson } from '../runtime/xds/proto-json';

type Plain = Record<string, unknown>;

/** A Listener as the proxy receives it (through bytes), its filter config a TypedStruct of `json`. */
function received(json: Plain, name = 'l'): Plain {
  const ts = envoyType('TypedStruct');
  const typedConfig = { type_url: TYPED_STRUCT_URLS[0], value: ts.encode(ts.fromObject({ type_url: TYPE_META_PROTOCOL_PROXY, value: jsonToStruct(json as never) })).finish() };
  const listener = { name, address: { socket_address: { address: '127.0.0.1', port_value: 9090 } }, filter_chains: [{ filters: [{ name: 'envoy.filters.network.meta_protocol_proxy', typed_config: typedConfig }] }] };
  return toPlain(envoyType('Listener'), fromPlain(envoyType('Listener'), listener));
}

// Aeraki's outbound EnvoyFilter value for a Thrift service (aeraki-control-plane reference §1.5).
const AERAKI_THRIFT = {
  statPrefix: 'outbound|9090||thrift-sample-server.meta-thrift.svc.cluster.local',
  applicationProtocol: 'thrift',
  rds: {
    routeConfigName: 'thrift-sample-server.meta-thrift.svc.cluster.local_9090',
    configSource: { resourceApiVersion: 'V3', apiConfigSource: { apiType: 'GRPC', transportApiVersion: 'V3', grpcServices: [{ envoyGrpc: { clusterName: 'aeraki-xds' } }] } },
  },
  codec: { name: 'aeraki.meta_protocol.codec.thrift' },
  metaProtocolFilters: [
    { name: 'aeraki.meta_protocol.filters.metadata_exchange' },
    { name: 'aeraki.meta_protocol.filters.istio_stats', config: { '@type': 'type.googleapis.com/aeraki.meta_protocol_proxy.filters.istio_stats.v1alpha.IstioStats', destinationService: 'thrift-sample-server.meta-thrift.svc.cluster.local' } },
    { name: 'aeraki.meta_protocol.filters.router' },
  ],
};

describe('LDS decoding', () => {
  it('reads Aeraki\'s EnvoyFilter MetaProtocolProxy: codec, RDS name, and its telemetry filters as listener telemetry', () => {
    const d = decodeListener(received(AERAKI_THRIFT));
    assert.equal(d.kind, 'listener');
    if (d.kind !== 'listener') return;
    assert.deepEqual(d.protocols, ['thrift']);
    assert.deepEqual(d.config.rds, { routeConfigName: 'thrift-sample-server.meta-thrift.svc.cluster.local_9090', validateClusters: false });
    assert.deepEqual(d.config.filters, []);
    assert.equal(d.config.idleTimeoutMs, 0, 'MetaProtocol Proxy: no idle_timeout, no idle timer');
    assert.equal(d.config.metadataExchange, true, 'metadata_exchange turns the exchange on');
    assert.equal(d.config.istioMetrics, true, 'istio_stats turns Istio metrics on');
    assert.equal(d.config.destinationService, 'thrift-sample-server.meta-thrift.svc.cluster.local', 'IstioStats.destination_service');
    assert.equal(d.config.trafficDirection, 'outbound');
    assert.deepEqual(d.notes.filter((n) => /istio_stats|metadata_exchange/.test(n)), []);
  });

  it('reads access_log (file and stdout loggers, text and JSON formats), tracing sampling and traffic_direction', () => {
    const fileType = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
    const stdoutType = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
    const json = {
      ...AERAKI_THRIFT,
      accessLog: [
        { name: 'envoy.access_loggers.file', typedConfig: { '@type': fileType, path: '/tmp/a.log', logFormat: { textFormatSource: { inlineString: '%REQ(METHOD)% %RESPONSE_CODE%\n' } } } },
        { name: 'envoy.access_loggers.stdout', typedConfig: { '@type': stdoutType, logFormat: { jsonFormat: { m: '%REQUEST_PROPERTY(method)%', d: '%DURATION%' } } } },
        { name: 'grpc', typedConfig: { '@type': 'type.googleapis.com/google.protobuf.Empty' } },
      ],
      tracing: { randomSampling: { value: 25 } },
    };
    const plain = received(json);
    const d = decodeListener({ ...plain, traffic_direction: 'INBOUND' });
    assert.equal(d.kind, 'listener');
    if (d.kind !== 'listener') return;
    assert.equal(d.config.trafficDirection, 'inbound');
    assert.equal(d.config.tracingSamplingPercent, 25);
    assert.deepEqual(d.config.accessLog?.map((a) => [a.path, a.format]), [
      ['/tmp/a.log', { kind: 'text', text: '%REQ(METHOD)% %RESPONSE_CODE%\n' }],
      ['/dev/stdout', { kind: 'json', fields: { m: '%REQUEST_PROPERTY(method)%', d: '%DURATION%' } }],
    ]);
    assert.ok(d.notes.some((n) => /access_log\[2\]: type\.googleapis\.com\/google\.protobuf\.Empty is not an access logger/.test(n)), d.notes.join('; '));
  });

  it('reads the same listener from MetaProtocolProxy bytes', () => {
    const type = envoyType('MetaProtocolProxy');
    const mpp = fromPlain(type, fromProtoJson(type, AERAKI_THRIFT, 'mpp'));
    const listener = { name: 'l', address: { socket_address: { address: '127.0.0.1', port_value: 9090 } }, filter_chains: [{ filters: [{ name: 'x', typed_config: { type_url: TYPE_META_PROTOCOL_PROXY, value: mpp } }] }] };
    const fromBytes = decodeListener(toPlain(envoyType('Listener'), fromPlain(envoyType('Listener'), listener)));
    assert.deepEqual(fromBytes, decodeListener(received(AERAKI_THRIFT)));
  });

  const refusals: Array<[string, Plain, RegExp]> = [
    ['the router not last', { ...AERAKI_THRIFT, metaProtocolFilters: [{ name: 'aeraki.meta_protocol.filters.router' }, { name: 'fault' }] }, /meta_protocol_filters\[0\]\.name: the router must be the last filter/],
    ['an unknown Aeraki filter', { ...AERAKI_THRIFT, metaProtocolFilters: [{ name: 'aeraki.meta_protocol.filters.nope' }] }, /meta_protocol_filters\[0\]\.name: unknown MetaProtocol filter/],
    ['no protocol at all', { statPrefix: 's', rds: { routeConfigName: 'r' } }, /protocol\.name: is required/],
    ['no routes', { statPrefix: 's', applicationProtocol: 'redis' }, /typed_config: needs rds or route_config/],
    ['a duration that is not one', { ...AERAKI_THRIFT, idleTimeout: '10 minutes' }, /value\.idleTimeout: must be a duration such as "1\.5s"/],
    ['an enum value that does not exist', { ...AERAKI_THRIFT, rds: { routeConfigName: 'r', configSource: { resourceApiVersion: 'V9' } } }, /resourceApiVersion: unknown value "V9"/],
    ['a plugin config that is not a JSON object', { ...AERAKI_THRIFT, metaProtocolFilters: [{ name: 'fault', config: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: '[1,2]' } }] }, /config: must hold a JSON object/],
    ['an enum value given as a number in a string', { ...AERAKI_THRIFT, rds: { routeConfigName: 'r', configSource: { resourceApiVersion: '2' } } }, /resourceApiVersion: unknown value "2"/],
    ['an access-log operator meltemi cannot fill', { ...AERAKI_THRIFT, accessLog: [{ name: 'f', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: '/tmp/x', logFormat: { textFormatSource: { inlineString: '%DOWNSTREAM_PEER_CERT%' } } } }] }, /access_log\[0\]\.typed_config\.log_format\.text_format: %DOWNSTREAM_PEER_CERT% is not a known operator/],
    ['a tracing sampling rate over 100', { ...AERAKI_THRIFT, tracing: { randomSampling: { value: 150 } } }, /tracing\.random_sampling\.value: must be between 0 and 100/],
    ['a uint32 past 2^32-1', { applicationProtocol: 'redis', routeConfig: { name: 'r', routes: [{ route: { weightedClusters: { clusters: [{ name: 'c', weight: 4294967296 }] } } }] } }, /weight: is out of range/],
    ['a static route with a bad regex', { applicationProtocol: 'redis', routeConfig: { name: 'r', routes: [{ match: { metadata: [{ name: 'k', safeRegexMatch: { regex: '(?=a)b' } }] }, route: { cluster: 'c' } }] } }, /route_config\.routes\[0\]\.match\.metadata\[0\]\.safe_regex_match\.regex: /],
  ];
  for (const [what, json, reason] of refusals) {
    it(`refuses ${what}, naming the field`, () => {
      assert.throws(() => decodeListener(received(json)), (err: Error) => { assert.match(err.message, reason); return true; });
    });
  }

  it('a meltemi filter plugin takes its JSON config from a Struct, a TypedStruct or a StringValue', () => {
    const configs = [
      { '@type': 'type.googleapis.com/google.protobuf.Struct', value: { abort: { percentage: 10 } } },
      { '@type': 'type.googleapis.com/udpa.type.v1.TypedStruct', typeUrl: 'type.googleapis.com/meltemi.Fault', value: { abort: { percentage: 10 } } },
      { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: '{"abort":{"percentage":10}}' },
    ];
    for (const config of configs) {
      const d = decodeListener(received({ ...AERAKI_THRIFT, metaProtocolFilters: [{ name: 'meltemi.filters.fault', config }] }));
      assert.ok(d.kind === 'listener');
      assert.deepEqual(d.config.filters, [{ name: 'fault', config: { abort: { percentage: 10 } }, failurePolicy: 'fail_closed', field: 'filter_chains[0].filters[0].typed_config.meta_protocol_filters[0]' }], JSON.stringify(config));
    }
  });

  it('protobuf JSON and Struct round-trip; wrappers take bare values', () => {
    const json = { a: 1, b: 'x', c: [true, null, { d: [] }], e: {} };
    const s = envoyType('Struct');
    assert.deepEqual(structToJson(toPlain(s, fromPlain(s, jsonToStruct(json)))), json);
    const tb = fromProtoJson(envoyType('LocalRateLimit'), { tokenBucket: { maxTokens: 3, tokensPerFill: 2, fillInterval: '0.25s' } }, 'x');
    assert.deepEqual(tb, { token_bucket: { max_tokens: 3, tokens_per_fill: { value: 2 }, fill_interval: { seconds: '0', nanos: 250_000_000 } } });
  });
});

function resources(yaml: string): Resource[] {
  return parseAllDocuments(yaml).filter((d) => d.toJSON() !== null).map((d, i) => readResource(d.toJSON(), `document ${i}`)).filter((r): r is Resource => r !== undefined);
}

describe('control plane listeners, read back by the agent', () => {
  const se = (name: string, addresses: string) => `
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: { name: ${name}, namespace: demo }
spec:
  hosts: [ ${name}.demo.svc.cluster.local ]
  ${addresses}
  ports: [ { number: 9090, name: tcp-metaprotocol-thrift-x } ]
---`;
  const router = `
apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: { name: a, namespace: demo }
spec:
  hosts: [ a.demo.svc.cluster.local ]
  localRateLimit:
    tokenBucket: { maxTokens: 100, tokensPerFill: 50, fillInterval: 1s }
    conditions:
      - match: { attributes: { method: { exact: sayHello }, tenant: { prefix: t- }, canary: null } }
        tokenBucket: { maxTokens: 5, fillInterval: 100ms }
`;

  it('the MetaRouter\'s localRateLimit comes back as the local-ratelimit plugin\'s config', () => {
    const built = buildListeners(resources(se('a', '') + router), new Set(), { address: '127.0.0.1' });
    assert.equal(built.listeners.length, 1);
    const d = decodeListener(toPlain(envoyType('Listener'), fromPlain(envoyType('Listener'), built.listeners[0])));
    assert.ok(d.kind === 'listener');
    assert.equal(d.config.name, '127.0.0.1_9090');
    assert.deepEqual(d.protocols, ['thrift']);
    assert.deepEqual(JSON.parse(JSON.stringify(d.config.filters)), [{
      name: 'local-ratelimit',
      failurePolicy: 'fail_closed',
      field: 'filter_chains[0].filters[0].typed_config.meta_protocol_filters[0]',
      config: {
        tokenBucket: { maxTokens: 100, tokensPerFill: 50, fillInterval: '1000ms' },
        conditions: [{ match: { attributes: { canary: null, method: { exact: 'sayHello' }, tenant: { prefix: 't-' } } }, tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: '100ms' } }],
      },
    }]);
  });

  it('services share a port on their own loopback addresses; a clash gets no listener and a note', () => {
    const built = buildListeners(resources(se('a', 'addresses: [ 10.0.0.1, 127.0.0.2 ]') + se('b', '') + se('c', '')), new Set(), { address: '127.0.0.1' });
    assert.deepEqual(built.listeners.map((l) => l.name), ['127.0.0.1_9090', '127.0.0.2_9090']);
    assert.equal(built.notes.length, 1);
    assert.match(built.notes[0], /ServiceEntry demo\/c: port 9090 on 127\.0\.0\.1 is already b\.demo\.svc\.cluster\.local's/);
  });

  it('metadata keys named like Object.prototype members are keys like any other', () => {
    const keys = router.replace('{ method: { exact: sayHello }, tenant: { prefix: t- }, canary: null }', '{ constructor: { exact: a }, toString: { prefix: b } }');
    const built = buildListeners(resources(se('a', '') + keys), new Set(), { address: '127.0.0.1' });
    const d = decodeListener(toPlain(envoyType('Listener'), fromPlain(envoyType('Listener'), built.listeners[0])));
    assert.ok(d.kind === 'listener');
    const conditions = (d.config.filters[0].config as { conditions: Array<{ match: { attributes: Record<string, unknown> } }> }).conditions;
    assert.deepEqual({ ...conditions[0].match.attributes }, { constructor: { exact: 'a' }, toString: { prefix: 'b' } });
  });

  it('refuses a rate-limit condition with a regex, naming the field', () => {
    const bad = router.replace('{ exact: sayHello }', '{ regex: "say.*" }');
    assert.throws(() => resources(bad), /localRateLimit\.conditions\[0\]\.match\.attributes\.method\.regex: the local rate limit matches exact, prefix or presence only/);
  });
});
