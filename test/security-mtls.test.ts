// mTLS between two meltemi sidecars with Istio identities, with a CA made by openssl here:
// Redis through a client sidecar (outbound, ISTIO_MUTUAL) and a server sidecar (inbound) to a
// real redis-server. Checked: the two identities meet over real TLS; STRICT refuses plaintext,
// PERMISSIVE serves both; a foreign trust domain or CA is refused either way; missing and
// expired certificates stop the start with the field and the reason.

import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import Redis from 'ioredis';
import { isMeltemiError } from '../runtime/core/errors';
import type { Meltemi } from '../runtime/server';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';
import { TestCa } from './helpers/test-ca';
import { clientSidecarYaml, identity, meshRedis, serverSidecarYaml } from './helpers/mtls-sidecars';

const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const CACHE = 'spiffe://cluster.local/ns/data/sa/cache';


describe('mTLS between two sidecars', function () {
  this.timeout(60_000);
  let ca: TestCa;
  let redis: RedisServer;
  let server: Meltemi;
  let client: Meltemi;
  const started: Meltemi[] = [];
  const clients: Redis[] = [];

  const start = async (yaml: string) => {
    const p = await startProxy(yaml);
    started.push(p);
    return p;
  };
  const connect = async (port: number) => {
    const c = meshRedis(port);
    clients.push(c);
    await c.connect();
    return c;
  };
  const metrics = async (p: Meltemi) => (await adminGet(p.admin!.port, '/metrics')).body;

  before(async () => {
    ca = TestCa.create();
    redis = await RedisServer.start();
    server = await start(serverSidecarYaml(identity(ca, ca.issue('cache', { uri: [CACHE] })), redis.port));
    client = await start(clientSidecarYaml(identity(ca, ca.issue('frontend', { uri: [FRONTEND] })), portOf(server, 'strict'), [CACHE]));
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(started.map((p) => p.stop()));
    await redis?.stop();
    ca?.remove();
  });

  it('two identities meet over real TLS: the server sees the client\'s principal, metrics say mutual_tls', async () => {
    const c = await connect(portOf(client, 'out'));
    assert.equal(await c.set('mtls:k', 'v'), 'OK');
    assert.equal(await c.get('mtls:k'), 'v');
    const s = await metrics(server);
    assert.ok(metricSum(s, 'meltemi_tls_handshakes_total', { side: 'inbound', outcome: 'mutual_tls' }) >= 1);
    assert.ok(metricSum(s, 'istio_requests_total', { reporter: 'destination', connection_security_policy: 'mutual_tls' }) >= 2);
    assert.ok(metricSum(await metrics(client), 'meltemi_tls_handshakes_total', { side: 'outbound', outcome: 'mutual_tls' }) >= 1);
    const expiry = metricSum(s, 'meltemi_tls_certificate_expiry_timestamp_seconds', { certificate: 'workload' });
    assert.ok(expiry > Date.now() / 1000 && expiry < Date.now() / 1000 + 2 * 86400, `expiry ${expiry}`);
  });

  it('STRICT refuses a plaintext client: no reply, the connection closes, counted', async () => {
    const before = metricSum(await metrics(server), 'meltemi_tls_handshakes_total', { outcome: 'plaintext_refused' });
    const socket = net.connect(portOf(server, 'strict'), '127.0.0.1');
    socket.write('*1\r\n$4\r\nPING\r\n');
    const received: Buffer[] = [];
    socket.on('data', (d) => received.push(d));
    await new Promise((resolve) => socket.on('close', resolve));
    assert.equal(Buffer.concat(received).length, 0);
    assert.equal(metricSum(await metrics(server), 'meltemi_tls_handshakes_total', { outcome: 'plaintext_refused' }), before + 1);
  });

  it('a TLS client without a certificate is refused', async () => {
    const socket = tls.connect({ port: portOf(server, 'strict'), host: '127.0.0.1', ca: ca.root, checkServerIdentity: () => undefined });
    socket.on('error', () => {});
    socket.write('*1\r\n$4\r\nPING\r\n');
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    await new Promise((resolve) => socket.on('close', resolve));
    assert.equal(Buffer.concat(received).length, 0);
  });

  it('a client that starts a handshake and stalls is closed at handshake_timeout, and counted', async () => {
    const slow = await start(serverSidecarYaml(identity(ca, ca.issue('cache', { uri: [CACHE] })), redis.port, '  handshake_timeout: 300ms'));
    const stalls = [Buffer.from([0x16]), Buffer.from([0x16, 3, 1, 0x00, 0x40])];
    await Promise.all(stalls.map((bytes) => new Promise((resolve) => {
      const socket = net.connect(portOf(slow, 'strict'), '127.0.0.1');
      socket.on('error', () => {});
      socket.resume();
      socket.write(bytes);
      socket.on('close', resolve);
    })));
    assert.equal(metricSum(await metrics(slow), 'meltemi_tls_handshakes_total', { side: 'inbound', outcome: 'timeout' }), 2);
  });

  it('PERMISSIVE serves plaintext and mTLS on one port', async () => {
    const plain = await connect(portOf(server, 'permissive'));
    assert.equal(await plain.ping(), 'PONG');
    const viaTls = await start(clientSidecarYaml(identity(ca, ca.issue('frontend', { uri: [FRONTEND] })), portOf(server, 'permissive')));
    const c = await connect(portOf(viaTls, 'out'));
    assert.equal(await c.ping(), 'PONG');
    const s = await metrics(server);
    assert.ok(metricSum(s, 'meltemi_tls_handshakes_total', { side: 'inbound', outcome: 'plaintext' }) >= 1);
    assert.ok(metricSum(s, 'istio_requests_total', { connection_security_policy: 'none' }) >= 1);
  });

  const refusedCases: Array<{ name: string; make: () => Promise<{ viaPort: number; watch: Meltemi; side: string; outcome: string }> }> = [
    {
      name: 'a client from another trust domain is refused by the server',
      make: async () => {
        // It trusts the server's domain; the server does not trust its.
        const p = await start(clientSidecarYaml(identity(ca, ca.issue('evil', { uri: ['spiffe://evil.example/ns/shop/sa/frontend'] })), portOf(server, 'strict'), [], '', '  trust_domains: [cluster.local]'));
        return { viaPort: portOf(p, 'out'), watch: server, side: 'inbound', outcome: 'untrusted_peer' };
      },
    },
    {
      name: 'a client whose certificate another CA signed is refused by the server',
      make: async () => {
        const other = TestCa.create('other-root');
        // It trusts the server's CA; the server does not trust its.
        const p = await start(clientSidecarYaml(identity(other, other.issue('frontend', { uri: [FRONTEND] }), other.root + ca.root), portOf(server, 'strict')));
        return { viaPort: portOf(p, 'out'), watch: server, side: 'inbound', outcome: 'failed' };
      },
    },
    {
      name: 'a server that is not one of the cluster\'s subject_alt_names is refused by the client',
      make: async () => {
        const p = await start(clientSidecarYaml(identity(ca, ca.issue('frontend', { uri: [FRONTEND] })), portOf(server, 'strict'), ['spiffe://cluster.local/ns/data/sa/other']));
        return { viaPort: portOf(p, 'out'), watch: p, side: 'outbound', outcome: 'untrusted_peer' };
      },
    },
  ];
  for (const t of refusedCases) {
    it(t.name, async () => {
      const { viaPort, watch, side, outcome } = await t.make();
      const c = await connect(viaPort);
      // The client sidecar answers with the protocol's error: its upstream could not be reached.
      await assert.rejects(c.get('mtls:k'), /upstream|connect|closed/i);
      const m = await metrics(watch);
      assert.ok(metricSum(m, "meltemi_tls_handshakes_total", { side, outcome }) >= 1, `${side} ${outcome} counted: ${m.split("\n").filter((l) => l.startsWith("meltemi_tls_handshakes")).join("; ")}`);
    });
  }

  const badStarts: Array<{ name: string; files: () => ReturnType<typeof identity>; code: string; message: RegExp }> = [
    { name: 'an expired certificate', files: () => identity(ca, ca.issue('old', { uri: [CACHE] }, { notAfter: '20210101000000Z' })), code: 'MELTEMI_CERTIFICATE_EXPIRED', message: /expired at 2021-01-01/ },
    { name: 'a missing key file', files: () => ({ ...identity(ca, ca.issue('cache', { uri: [CACHE] })), privateKey: '/nonexistent/key.pem' }), code: 'MELTEMI_CERTIFICATE_MISSING', message: /security\.certificates\.files\.private_key: .*nonexistent/ },
    { name: 'a certificate without a SPIFFE ID', files: () => identity(ca, ca.issue('dns', { dns: ['cache.local'] })), code: 'MELTEMI_CERTIFICATE_INVALID', message: /no SPIFFE ID/ },
    { name: 'a key of another certificate', files: () => ({ ...identity(ca, ca.issue('a', { uri: [CACHE] })), privateKey: identity(ca, ca.issue('b', { uri: [CACHE] })).privateKey }), code: 'MELTEMI_CERTIFICATE_INVALID', message: /does not match/ },
  ];
  for (const t of badStarts) {
    it(`refuses to start with ${t.name}, saying why`, async () => {
      await assert.rejects(startProxy(serverSidecarYaml(t.files(), redis.port)), (err: unknown) => isMeltemiError(err) && err.code === t.code && t.message.test(err.message));
    });
  }
});
