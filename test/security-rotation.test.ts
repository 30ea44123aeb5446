// Certificate rotation under load, as a mesh rotates its root: both sidecars first trust the old
// and the new root, then take leaf certificates of the new one, then drop the old root. Through
// it all, Redis clients keep reading through the two sidecars and new clients keep connecting
// (each with its own upstream TLS connection): no request may fail.

import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import Redis from 'ioredis';
import type { Meltemi } from '../runtime/server';
import { clientSidecarYaml, serverSidecarYaml } from './helpers/mtls-sidecars';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';
import { TestCa, writeWorkloadFiles, type Issued } from './helpers/test-ca';

const CACHE = 'spiffe://cluster.local/ns/data/sa/cache';
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';

type Files = ReturnType<typeof writeWorkloadFiles>;

/** Replaces a file whole (rename), as cert-manager and istio-agent do. */
function replace(path: string, content: string): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}

describe('certificate rotation under load', function () {
  this.timeout(120_000);
  let oldCa: TestCa;
  let newCa: TestCa;
  let redis: RedisServer;
  let server: Meltemi;
  let client: Meltemi;
  let serverFiles: Files;
  let clientFiles: Files;

  before(async () => {
    oldCa = TestCa.create('old-root');
    newCa = TestCa.create('new-root');
    redis = await RedisServer.start();
    serverFiles = writeWorkloadFiles(mkdtempSync(join(tmpdir(), 'meltemi-id-')), oldCa.issue('cache', { uri: [CACHE] }), oldCa.root);
    clientFiles = writeWorkloadFiles(mkdtempSync(join(tmpdir(), 'meltemi-id-')), oldCa.issue('frontend', { uri: [FRONTEND] }), oldCa.root);
    server = await startProxy(serverSidecarYaml(serverFiles, redis.port));
    client = await startProxy(clientSidecarYaml(clientFiles, portOf(server, 'strict'), [], '    upstream_connection: per_client'));
    const seed = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true });
    await seed.connect();
    await seed.set('rotation:key', 'value');
    seed.disconnect();
  });

  after(async () => {
    await client?.stop();
    await server?.stop();
    await redis?.stop();
    oldCa?.remove();
    newCa?.remove();
  });

  const rotations = async (p: Meltemi) => metricSum((await adminGet(p.admin!.port, '/metrics')).body, 'meltemi_tls_certificate_rotations_total', { outcome: 'rotated' });
  const handshakes = async (p: Meltemi) => metricSum((await adminGet(p.admin!.port, '/metrics')).body, 'meltemi_tls_handshakes_total', { side: 'inbound', outcome: 'mutual_tls' });
  const until = async (what: string, ok: () => Promise<boolean>) => {
    const t0 = Date.now();
    while (!(await ok())) {
      if (Date.now() - t0 > 20_000) throw new Error(`never: ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  it('moves both sidecars to a new root with 0 failed requests', async () => {
    let stop = false;
    let ok = 0;
    let connections = 0;
    const errors: string[] = [];
    const port = portOf(client, 'out');
    const check = (v: string | null) => { if (v === 'value') ok++; else errors.push(`unexpected ${String(v)}`); };
    // Long-lived readers, and a churn of new clients: every new client is a new TLS handshake upstream.
    const readers = Array.from({ length: 4 }, async () => {
      const r = new Redis({ port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, maxRetriesPerRequest: 0 });
      while (!stop) await r.get('rotation:key').then(check, (e: Error) => errors.push(e.message));
      r.disconnect();
    });
    const churn = (async () => {
      while (!stop) {
        const r = new Redis({ port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, maxRetriesPerRequest: 0, lazyConnect: true });
        try {
          await r.connect();
          check(await r.get('rotation:key'));
          connections++;
        } catch (e) {
          errors.push((e as Error).message);
        } finally {
          r.disconnect();
        }
      }
    })();
    const steps: Array<[string, () => void]> = [
      ['both trust both roots', () => { replace(serverFiles.trustBundle, oldCa.root + newCa.root); replace(clientFiles.trustBundle, oldCa.root + newCa.root); }],
      ['both take leaves of the new root', () => {
        for (const [files, issued] of [[serverFiles, newCa.issue('cache', { uri: [CACHE] })], [clientFiles, newCa.issue('frontend', { uri: [FRONTEND] })]] as Array<[Files, Issued]>) {
          replace(files.privateKey, issued.privateKey);
          replace(files.certChain, issued.certChain);
        }
      }],
      ['both drop the old root', () => { replace(serverFiles.trustBundle, newCa.root); replace(clientFiles.trustBundle, newCa.root); }],
    ];
    for (const [i, [name, step]] of steps.entries()) {
      const handshakesBefore = await handshakes(server);
      step();
      await until(`${name}: both sidecars rotated`, async () => (await rotations(server)) >= i + 1 && (await rotations(client)) >= i + 1);
      // New connections are made (and served) with what was just rotated in.
      await until(`${name}: new handshakes after the rotation`, async () => (await handshakes(server)) >= handshakesBefore + 10);
    }
    stop = true;
    await Promise.all([...readers, churn]);
    assert.deepEqual(errors, []);
    // The server now presents a leaf of the new root and trusts nothing else.
    const probe = (ca: TestCa) => new Promise<string>((resolve) => {
      const leaf = ca.issue('probe', { uri: [FRONTEND] });
      const s = tls.connect({ port: portOf(server, 'strict'), host: '127.0.0.1', ca: newCa.root, cert: leaf.certChain, key: leaf.privateKey, checkServerIdentity: () => undefined });
      s.on('error', (e) => resolve(e.message));
      s.on('secureConnect', () => s.write('*1\r\n$4\r\nPING\r\n'));
      s.on('data', (d: Buffer) => { resolve(d.toString()); s.destroy(); });
      s.on('close', () => resolve('closed'));
    });
    assert.equal(await probe(newCa), '+PONG\r\n');
    assert.notEqual(await probe(oldCa), '+PONG\r\n');
    assert.ok(ok > 100 && connections >= 20, `${ok} answers, ${connections} new connections`);
  });
});
