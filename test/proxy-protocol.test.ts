// PROXY protocol v1 and v2: the parser and encoder against the spec's examples and hostile bytes,
// and two meltemi hops on loopback where the second one learns the real client's address.

import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeProxyHeader, parseProxyHeader } from '../runtime/sidecar/proxy-protocol';
import type { Meltemi } from '../runtime/server';
import { RedisServer } from './helpers/redis-server';
import { portOf, startProxy } from './helpers/proxy';
import { PLUGIN_DIR } from './helpers/paths';

const SIG = '0d0a0d0a000d0a515549540a';
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('PROXY protocol: parsing and encoding', () => {
  const cases: Array<[string, Buffer, unknown]> = [
    ['v1 TCP4', Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET'), { source: { address: '192.0.2.1', port: 56324 }, destination: { address: '198.51.100.2', port: 443 }, version: 1, length: 45 }],
    ['v1 TCP6', Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n'), { source: { address: '2001:db8::1', port: 1 }, destination: { address: '2001:db8::2', port: 65535 }, version: 1, length: 44 }],
    ['v1 UNKNOWN', Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'), { source: undefined, destination: undefined, version: 1, length: 35 }],
    ['v2 TCP4', hex(`${SIG} 21 11 000c c0000201 c6336402 dc04 01bb`), { source: { address: '192.0.2.1', port: 56324 }, destination: { address: '198.51.100.2', port: 443 }, version: 2, length: 28 }],
    ['v2 TCP4 with a TLV after the addresses', hex(`${SIG} 21 11 0010 c0000201 c6336402 dc04 01bb 04 0001 00`), { source: { address: '192.0.2.1', port: 56324 }, destination: { address: '198.51.100.2', port: 443 }, version: 2, length: 32 }],
    ['v2 TCP6', hex(`${SIG} 21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 0050 1f90`), { source: { address: '2001:db8::1', port: 80 }, destination: { address: '2001:db8::2', port: 8080 }, version: 2, length: 52 }],
    ['v2 LOCAL', hex(`${SIG} 20 00 0000`), { source: undefined, destination: undefined, version: 2, length: 16 }],
  ];
  for (const [name, bytes, want] of cases) {
    it(`reads ${name}`, () => {
      const r = parseProxyHeader(bytes);
      assert.equal(r.kind, 'header');
      if (r.kind !== 'header') return;
      assert.deepEqual({ ...r.header, length: r.length }, want);
    });
  }

  const refused: Array<[string, Buffer, RegExp]> = [
    ['v1 without CRLF in 107 bytes', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), /longer than 107/],
    ['v1 with a port above 65535', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n'), /port/],
    ['v1 with a leading-zero port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 080 1\r\n'), /port/],
    ['v1 TCP4 with an IPv6 address', Buffer.from('PROXY TCP4 ::1 5.6.7.8 1 1\r\n'), /not IPv4/],
    ['v1 with too few fields', Buffer.from('PROXY TCP4 1.2.3.4\r\n'), /not "PROXY/],
    ['v2 version 3', hex(`${SIG} 31 11 000c c0000201 c6336402 dc04 01bb`), /version 3/],
    ['v2 command 2', hex(`${SIG} 22 11 000c c0000201 c6336402 dc04 01bb`), /command 2/],
    ['v2 TCP4 shorter than its addresses', hex(`${SIG} 21 11 0004 c0000201`), /shorter/],
    ['v2 UDP', hex(`${SIG} 21 12 000c c0000201 c6336402 dc04 01bb`), /not TCP/],
  ];
  for (const [name, bytes, message] of refused) {
    it(`refuses ${name}`, () => {
      const r = parseProxyHeader(bytes);
      assert.equal(r.kind, 'invalid');
      if (r.kind === 'invalid') assert.match(r.message, message);
    });
  }

  it('asks for more while a header may still be arriving, and says absent as soon as it cannot be one', () => {
    for (const partial of ['PRO', 'PROXY TCP4 1.2.3.4', '\r\n\r\n\0', `${'x'.repeat(0)}`]) assert.equal(parseProxyHeader(Buffer.from(partial, 'latin1')).kind, 'need', partial);
    assert.equal(parseProxyHeader(hex(`${SIG} 21 11 000c c0000201`)).kind, 'need');
    for (const other of ['*1\r\n$4\r\nPING\r\n', 'PROXZ', '\r\n\r\nX']) assert.equal(parseProxyHeader(Buffer.from(other)).kind, 'absent', other);
  });

  it('encodes what it parses, and LOCAL/UNKNOWN when addresses are unknown or of two families', () => {
    const src = { address: '::ffff:10.0.0.1', port: 40000 };
    const dst = { address: '10.0.0.2', port: 6379 };
    for (const version of [1, 2] as const) {
      const r = parseProxyHeader(encodeProxyHeader(version, src, dst));
      assert.ok(r.kind === 'header');
      assert.deepEqual(r.header, { source: { address: '10.0.0.1', port: 40000 }, destination: dst, version });
      const six = parseProxyHeader(encodeProxyHeader(version, { address: 'fe80::1:2', port: 1 }, { address: '::1', port: 2 }));
      assert.ok(six.kind === 'header');
      assert.deepEqual(six.header.source, { address: 'fe80::1:2', port: 1 });
      const unknown = parseProxyHeader(encodeProxyHeader(version, { address: '::1', port: 1 }, dst));
      assert.ok(unknown.kind === 'header');
      assert.equal(unknown.header.source, undefined);
    }
  });
});

describe('PROXY protocol: two meltemi hops keep the client\'s address', function () {
  this.timeout(20_000);
  let redis: RedisServer;
  const proxies: Meltemi[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-pp-'));

  before(async () => {
    redis = await RedisServer.start();
  });

  after(async () => {
    for (const p of proxies) await p.stop();
    await redis?.stop();
  });

  async function hop(name: string, extra: { listener?: string; cluster?: string; target: number }): Promise<Meltemi> {
    const proxy = await startProxy(`
plugins: { directory: ${PLUGIN_DIR}, watch: false }
admin: { address: 127.0.0.1, port: 0 }
telemetry: { access_log: [ { path: ${join(dir, `${name}.log`)}, format: "%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %RESPONSE_CODE%" } ] }
listeners:
  - name: ${name}
    address: 127.0.0.1
    port: 0
    protocol: redis
    ${extra.listener ?? ''}
    route_config: { name: r, routes: [ { name: all, match: {}, route: { cluster: next } } ] }
clusters:
  - name: next
    endpoints: [ { address: 127.0.0.1, port: ${extra.target} } ]
    ${extra.cluster ?? ''}
`);
    proxies.push(proxy);
    return proxy;
  }

  /** One PING from 127.0.0.55 (a loopback address of its own, so it differs from the proxies'). */
  async function ping(port: number): Promise<string> {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.55' });
    s.write('PING\r\n');
    const [reply] = await Promise.race([
      new Promise<[string]>((resolve) => s.once('data', (d: Buffer) => resolve([d.toString()]))),
      new Promise<[string]>((resolve) => s.once('close', () => resolve(['closed']))),
    ]);
    s.destroy();
    return reply;
  }

  /** Stops `proxy` (which writes out its log) and reads the log. */
  async function logLines(proxy: Meltemi, name: string): Promise<string[]> {
    proxies.splice(proxies.indexOf(proxy), 1);
    await proxy.stop();
    return readFileSync(join(dir, `${name}.log`), 'utf8').trim().split('\n');
  }

  for (const version of ['v1', 'v2']) {
    it(`sends ${version} on a cluster and reads it on a listener`, async () => {
      const second = await hop(`second_${version}`, { listener: 'proxy_protocol: true', target: redis.port });
      const first = await hop(`first_${version}`, { cluster: `proxy_protocol: ${version}`, target: portOf(second, `second_${version}`) });
      assert.equal(await ping(portOf(first, `first_${version}`)), '+PONG\r\n');
      const [secondLine] = await logLines(second, `second_${version}`);
      const [firstLine] = await logLines(first, `first_${version}`);
      assert.match(firstLine, /^127\.0\.0\.55:\d+ /);
      // The second hop sees the client's address and the address it dialled, not the first hop's.
      assert.equal(secondLine, firstLine);
    });
  }

  it('survives a client that resets mid-header (no unhandled socket error)', async () => {
    const listener = await hop('resets', { listener: 'proxy_protocol: true', target: redis.port });
    const port = portOf(listener, 'resets');
    for (let i = 0; i < 3; i++) {
      const s = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => s.once('connect', resolve));
      s.write('PROXY TCP4 1.2');
      await new Promise((resolve) => setTimeout(resolve, 20));
      const closed = new Promise((resolve) => s.once('close', resolve));
      s.resetAndDestroy();
      await closed;
    }
    // Still serving: the same listener answers a client with a good header.
    const ok = net.connect(port, '127.0.0.1');
    ok.write('PROXY TCP4 127.0.0.9 127.0.0.1 1000 6379\r\nPING\r\n');
    const [reply] = await new Promise<[string]>((resolve) => ok.once('data', (d: Buffer) => resolve([d.toString()])));
    ok.destroy();
    assert.equal(reply, '+PONG\r\n');
  });

  it('closes a connection without a header (counted), and serves one with allow_without', async () => {
    const strict = await hop('strict', { listener: 'proxy_protocol: true', target: redis.port });
    assert.equal(await ping(portOf(strict, 'strict')), 'closed');
    // The refusal is counted once the listener gave up on the header.
    let metrics = '';
    while (!/meltemi_proxy_protocol_errors_total\{listener="strict"\} 1/.test(metrics)) metrics = await (await fetch(`http://127.0.0.1:${strict.admin!.port}/metrics`)).text();
    assert.match(metrics, /meltemi_proxy_protocol_errors_total\{listener="strict"\} 1/);
    const lenient = await hop('lenient', { listener: 'proxy_protocol: { allow_without: true }', target: redis.port });
    assert.equal(await ping(portOf(lenient, 'lenient')), '+PONG\r\n');
    const [line] = await logLines(lenient, 'lenient');
    assert.match(line, /^127\.0\.0\.55:\d+ 127\.0\.0\.1:\d+ 0$/);
  });
});
