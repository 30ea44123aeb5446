// Certificates from SDS, as istio-agent serves them: a real gRPC server on a Unix socket pushes
// `default` and `ROOTCA`; the sidecar serves mTLS with them, takes a pushed rotation, NACKs a
// broken secret with the reason (and keeps serving), and refuses to start when SDS sends nothing.

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMeltemiError } from '../runtime/core/errors';
import type { Meltemi } from '../runtime/server';
import { clientSidecarYaml, meshRedis, serverSidecarYaml } from './helpers/mtls-sidecars';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';
import { SdsServer } from './helpers/sds-server';
import { TestCa, writeWorkloadFiles } from './helpers/test-ca';

const CACHE = 'spiffe://cluster.local/ns/data/sa/cache';
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';

/** The server sidecar's YAML with its certificates from SDS on `socket` instead of files. */
const sdsSidecar = (socket: string, redisPort: number, timeout = '10s') => serverSidecarYaml({ certChain: '', privateKey: '', trustBundle: '' }, redisPort)
  .replace(/ {2}certificates:\n {4}files: .*\n/, `  certificates:\n    sds: { socket: ${JSON.stringify(socket)}, initial_fetch_timeout: ${timeout} }\n`);

describe('certificates from SDS (a gRPC server on a Unix socket)', function () {
  this.timeout(60_000);
  let ca: TestCa;
  let sds: SdsServer;
  let redis: RedisServer;
  let server: Meltemi;
  let client: Meltemi;
  let dir: string;

  before(async () => {
    ca = TestCa.create();
    dir = mkdtempSync(join(tmpdir(), 'meltemi-sds-'));
    sds = await SdsServer.start(join(dir, 'socket'));
    const leaf = ca.issue('cache', { uri: [CACHE] });
    sds.set('default', { certChain: leaf.certChain, privateKey: leaf.privateKey });
    sds.set('ROOTCA', { trustBundle: ca.root });
    redis = await RedisServer.start();
    server = await startProxy(sdsSidecar(sds.socket, redis.port));
    client = await startProxy(clientSidecarYaml(writeWorkloadFiles(mkdtempSync(join(tmpdir(), 'meltemi-id-')), ca.issue('frontend', { uri: [FRONTEND] }), ca.root), portOf(server, 'strict'), [CACHE], '    upstream_connection: per_client'));
  });

  after(async () => {
    await client?.stop();
    await server?.stop();
    await sds?.stop();
    await redis?.stop();
    ca?.remove();
  });

  const ping = async () => {
    const c = meshRedis(portOf(client, 'out'));
    try {
      await c.connect();
      return await c.ping();
    } finally {
      c.disconnect();
    }
  };
  const serverMetric = async (name: string, labels: Record<string, string> = {}) => metricSum((await adminGet(server.admin!.port, '/metrics')).body, name, labels);

  it('serves mTLS with the certificate SDS sent, and ACKs both secrets', async () => {
    assert.equal(await ping(), 'PONG');
    assert.ok(sds.acks.some((a) => a.name === 'default' && a.version === '1'));
    assert.ok(sds.acks.some((a) => a.name === 'ROOTCA' && a.version === '1'));
    assert.ok(await serverMetric('meltemi_tls_certificate_expiry_timestamp_seconds', { certificate: 'workload', source: 'sds' }) > Date.now() / 1000);
  });

  it('takes a pushed rotation: new connections get the new certificate', async () => {
    const leaf = ca.issue('cache', { uri: [CACHE] }, { days: 7 });
    sds.set('default', { certChain: leaf.certChain, privateKey: leaf.privateKey });
    await sds.until(() => sds.acks.some((a) => a.name === 'default' && a.version === '2'));
    const expiry = await serverMetric('meltemi_tls_certificate_expiry_timestamp_seconds', { certificate: 'workload' });
    assert.ok(expiry > Date.now() / 1000 + 6 * 86400, 'the 7-day certificate is in use');
    assert.equal(await serverMetric('meltemi_tls_certificate_rotations_total', { outcome: 'rotated' }), 1);
    assert.equal(await ping(), 'PONG');
  });

  it('NACKs a certificate whose key does not match, with the reason, and keeps serving the last good one', async () => {
    const a = ca.issue('cache', { uri: [CACHE] });
    const b = ca.issue('cache', { uri: [CACHE] });
    sds.set('default', { certChain: a.certChain, privateKey: b.privateKey });
    // A NACK carries the version still in use (Envoy's rule), and why the new one was refused.
    await sds.until(() => sds.nacks.some((n) => n.name === 'default'));
    const nack = sds.nacks.find((n) => n.name === 'default')!;
    assert.equal(nack.version, '2');
    assert.match(nack.message, /private key does not match/);
    assert.equal(await ping(), 'PONG');
    assert.equal(await serverMetric('meltemi_tls_certificate_rotations_total', { outcome: 'refused' }), 1);
  });

  it('refuses to start when SDS sends no secret in time, naming what is missing', async () => {
    const silent = await SdsServer.start(join(dir, 'silent'));
    try {
      await assert.rejects(startProxy(sdsSidecar(silent.socket, redis.port, '300ms')),
        (err: unknown) => isMeltemiError(err, 'MELTEMI_CERTIFICATE_MISSING') && /sent no "default" or "ROOTCA" secret within 300 ms/.test(err.message));
    } finally {
      await silent.stop();
    }
  });
});
