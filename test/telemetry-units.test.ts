// The parts of telemetry that a hostile peer or client reaches with bytes, checked without
// sockets: peer identities are interned (re-encodings are one peer) and capped; metric rows are
// capped per destination; access-log values are escaped so a line stays a line and JSON stays
// valid UTF-8; Istio's own default text format compiles; trace contexts are parsed strictly.

import assert from 'node:assert/strict';
import { validateConfig } from '../runtime/config/validate';
import { ListenerStats, MAX_COMMANDS } from '../runtime/core/stats';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessLog } from '../runtime/telemetry/access-log';
import { compileJson, compileText } from '../runtime/telemetry/access-log-format';
import { IstioSeries } from '../runtime/telemetry/istio-metrics';
import { encodePeerMetadata, MAX_PEERS, PeerTable } from '../runtime/telemetry/peer-metadata';
import type { RequestRecord } from '../runtime/telemetry/request-record';
import { parseTraceParent } from '../runtime/telemetry/trace-context';
import { resolveWorkload, UNKNOWN_PEER } from '../runtime/telemetry/workload';

const identity = (workload: string) => resolveWorkload({ workload, namespace: 'shop', app: workload, version: 'v1' }, undefined, {});
/** The same Struct with an unknown field appended: decodes to the same identity. */
const reencoded = (b64: string, n: number) => Buffer.concat([Buffer.from(b64, 'base64'), Buffer.from([0x10, n & 0x7f])]).toString('base64');

describe('peer identities from x-envoy-peer-metadata', () => {
  it('one identity in many encodings is one peer; the metric rows do not multiply', () => {
    const table = new PeerTable();
    const value = encodePeerMetadata(identity('frontend'));
    const peers = new Set(Array.from({ length: 100 }, (_, i) => table.lookup(reencoded(value, i), 'id')));
    assert.equal(peers.size, 1);
    const [peer] = peers;
    assert.equal(peer.workload, 'frontend');
    const series = new IstioSeries({ reporter: 'destination', self: identity('me'), protocol: 'dubbo', destinationService: undefined, securityPolicy: 'none' }, 'c');
    for (let i = 0; i < 100; i++) series.row(0, '-', table.lookup(reencoded(value, i), 'id'));
    assert.equal(series.rows.length, 1);
  });

  it('past the cap new identities are unknown and counted; known ones still resolve', () => {
    const table = new PeerTable();
    const first = table.lookup(encodePeerMetadata(identity('w0')), '');
    for (let i = 1; i < MAX_PEERS; i++) table.lookup(encodePeerMetadata(identity(`w${i}`)), '');
    assert.equal(table.rejected, 0);
    assert.equal(table.lookup(encodePeerMetadata(identity('one-too-many')), ''), UNKNOWN_PEER);
    assert.equal(table.rejected, 1);
    assert.equal(table.lookup(reencoded(encodePeerMetadata(identity('w0')), 5), ''), first);
  });

  const garbage: Array<[string, string]> = [
    ['not base64 protobuf', '!!!'],
    ['a length past the end', Buffer.from([0x0a, 0x7f, 0x01]).toString('base64')],
    ['a varint that never ends', Buffer.alloc(20, 0xff).toString('base64')],
    ['an oversize value', 'A'.repeat(20_000)],
  ];
  for (const [what, value] of garbage) {
    it(`${what}: the peer is unknown, counted, nothing thrown`, () => {
      const table = new PeerTable();
      assert.equal(table.lookup(value, ''), UNKNOWN_PEER);
      assert.equal(table.rejected, 1);
    });
  }
});

describe('access-log formats', () => {
  const record = (method: string): RequestRecord => ({
    req: { meta: { getWellKnown: (id: number) => (id === 2 ? method : undefined), get: () => undefined }, stats: null, requestBytes: 3, upstreamEndpoint: null, tryId: 1, traceId: '' },
    listener: 'l', protocol: 'p', durationMs: 1.4, responseBytes: 2, code: 0, flags: '-', details: 'via_upstream', responseMeta: undefined,
    startMs: 0, downstreamRemote: '127.0.0.1:1', downstreamLocal: '127.0.0.1:2',
  } as unknown as RequestRecord);

  it('text: control characters and NEL are escaped, so one request is one line', () => {
    const line = compileText('m=%METHOD% d=%DURATION%', 'f')(record('a\nb\r\x85c'));
    assert.equal(line, 'm=a\\nb\\r\\u0085c d=1\n');
  });

  it('text: a client\'s UTF-8 bytes come out as sent', () => {
    const bytes = Buffer.from('é✓', 'utf8').toString('latin1');
    const line = compileText('%METHOD%', 'f')(record(bytes));
    assert.deepEqual(Buffer.from(line, 'latin1'), Buffer.from('é✓\n', 'utf8'));
  });

  it('JSON: valid UTF-8 whatever the bytes; numbers stay numbers', () => {
    const line = compileJson({ m: '%METHOD%', d: '%DURATION%', 'ü': '%PROTOCOL%' }, 'f')(record(`${Buffer.from('é', 'utf8').toString('latin1')}\xff`));
    const text = Buffer.from(line, 'latin1');
    assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(text));
    assert.deepEqual(JSON.parse(text.toString('utf8')), { m: 'é\ufffd', d: 1, 'ü': 'p' });
  });

  it('the byte writer access logs use writes what the string formatter makes, across chunk boundaries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-writer-'));
    const path = join(dir, 'a.log');
    // Text before the long field: a line that outgrows its chunk carries its start to the next.
    const format = 'line %DURATION% %METHOD% "%REQUEST_PROPERTY(x)%" %BYTES_SENT% %RESPONSE_FLAGS%';
    const config = { path, format: { kind: 'text' as const, text: format }, filter: { errorsOnly: false, minDurationMs: 0, responseFlags: [], samplePercent: 100 }, field: 'f' };
    const log = new AccessLog(config);
    const expected: string[] = [];
    const asString = compileText(format, 'f');
    for (let i = 0; i < 3000; i++) {
      // Lines of every length up to about 1.2 KiB (1.8 MB in all, under the 4 MiB a sink holds),
      // some with control characters and non-ASCII bytes.
      const method = `${'m'.repeat(i % 1200)}${i % 7 === 0 ? '\n\x01\x85\xe9' : ''}`;
      const r = { ...record(method), durationMs: i, responseBytes: i * 1000 };
      expected.push(asString(r));
      log.log(r);
    }
    await log.close();
    assert.equal(readFileSync(path, 'latin1'), expected.join(''));
  });

  it('Istio\'s default text format compiles (REQ(a?b), pseudo-headers, UPSTREAM_CLUSTER_RAW, START_TIME(fmt))', () => {
    const istio = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';
    const line = compileText(istio, 'f')(record('GET'));
    assert.match(line, /^\[1970-01-01T00:00:00\.000Z\] "GET - p" 0 - via_upstream - "-" 3 2 1 - /);
    assert.match(compileText('%START_TIME(%Y-%m-%d)%', 'f')(record('x')), /^1970-01-01T00:00:00\.000Z\n$/);
  });
});

describe('trace context parsing', () => {
  const cases: Array<[string, string | undefined, boolean]> = [
    ['a sampled context', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', true],
    ['an unsampled one', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00', true],
    ['a later version with more fields', '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes', true],
    ['version ff', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', false],
    ['version 00 with more fields', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x', false],
    ['a zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, false],
    ['a zero span id', `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`, false],
    ['upper-case hex', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', false],
    ['a short trace id', '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01', false],
    ['absent', undefined, false],
  ];
  for (const [what, value, valid] of cases) {
    it(`${what}: ${valid ? 'followed' : 'a new trace'}`, () => assert.equal(parseTraceParent(value) !== undefined, valid));
  }
});

describe('telemetry defaults that apply when a field is left out', () => {
  it('an access log without path goes to stdout; OTLP without port to 4317', () => {
    const c = validateConfig({
      listeners: [{ name: 'l', port: 7000, protocol: 'redis', route_config: { routes: [{ route: { cluster: 'c' } }] } }],
      clusters: [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: 1 }] }],
      telemetry: { access_log: [{ json: true }], tracing: { otlp: { address: '127.0.0.1' } } },
    }, '/');
    assert.equal(c.telemetry.accessLog[0].path, '/dev/stdout');
    assert.equal(c.telemetry.tracing?.otlp.port, 4317);
    assert.equal(c.telemetry.tracing?.samplingPercent, 1);
  });
});

describe('requests by command', () => {
  it('counts each command, and past MAX_COMMANDS distinct values (clients choose them) counts "other"', () => {
    const s = new ListenerStats('l');
    for (let i = 0; i < MAX_COMMANDS + 50; i++) s.command(`CMD${i}`);
    s.command('CMD0');
    assert.equal(s.commands.size, MAX_COMMANDS + 1);
    assert.equal(s.commands.get('CMD0'), 2);
    assert.equal(s.commands.get('other'), 50);
  });
});
