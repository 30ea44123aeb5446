// What mTLS between two sidecars costs: redis-benchmark -t set,get at -P 1 and -P 16 through a
// client sidecar and a server sidecar, plaintext between them and then ISTIO_MUTUAL/STRICT, in
// interleaved rounds against redis-server directly. The figure is the CPU per request of both
// proxies together, and what TLS adds to it. Then the handshake rate: new mTLS connections per
// second a server sidecar completes (a Node client completing each handshake and one PING),
// against plaintext connections through the same loop.

import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { TestCa, writeWorkloadFiles } from '../helpers/test-ca';
import { cpuSeconds } from './proc-cpu';
import { median, redisBenchmark } from './redis-benchmark';

export interface SecurityBenchOptions { rounds: number; requestsP1: number; requestsP16: number; clients: number; handshakes: number }

type Files = ReturnType<typeof writeWorkloadFiles>;

const certs = (f: Files) => `security:
  certificates:
    files: { cert_chain: ${JSON.stringify(f.certChain)}, private_key: ${JSON.stringify(f.privateKey)}, trust_bundle: ${JSON.stringify(f.trustBundle)} }
`;

async function pair(redisPort: number, client: Files, server: Files, mtls: boolean): Promise<{ port: number; inboundPort: number; procs: MeltemiProcess[] }> {
  const inboundPort = await freePort();
  const serverProc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
${certs(server)}
listeners:
  - { name: inbound, port: ${inboundPort}, protocol: redis, traffic_direction: inbound, peer_authentication: ${mtls ? 'STRICT' : 'DISABLE'}, route_config: { routes: [ { route: { cluster: "inbound|6379||" } } ] } }
clusters:
  - { name: "inbound|6379||", endpoints: [ { address: 127.0.0.1, port: ${redisPort} } ] }
`, inboundPort, { args: ['--workers', '1'] });
  const port = await freePort();
  const clientProc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
${certs(client)}
listeners:
  - { name: out, port: ${port}, protocol: redis, route_config: { routes: [ { route: { cluster: "outbound|6379||cache.data.svc.cluster.local" } } ] } }
clusters:
  - { name: "outbound|6379||cache.data.svc.cluster.local", endpoints: [ { address: 127.0.0.1, port: ${inboundPort} } ]${mtls ? ', tls: { mode: ISTIO_MUTUAL }' : ''} }
`, port, { args: ['--workers', '1'] });
  return { port, inboundPort, procs: [clientProc, serverProc] };
}

/** Connections per second through `open` (each settles after one PING answered), 20 at a time. */
async function connectionRate(n: number, open: () => net.Socket): Promise<number> {
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (next++ < n) {
      await new Promise<void>((resolve, reject) => {
        const s = open();
        s.once('error', reject);
        s.once('data', () => { s.destroy(); resolve(); });
        s.write('*1\r\n$4\r\nPING\r\n');
      });
    }
  }));
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

export async function securityBench(opts: SecurityBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  const ca = TestCa.create('bench-root');
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-bench-security-'));
  const client = writeWorkloadFiles(mkdtempSync(join(dir, 'c-')), ca.issue('frontend', { uri: ['spiffe://cluster.local/ns/shop/sa/frontend'] }, { days: 2 }), ca.root);
  const server = writeWorkloadFiles(mkdtempSync(join(dir, 's-')), ca.issue('cache', { uri: ['spiffe://cluster.local/ns/data/sa/cache'] }, { days: 2 }), ca.root);
  const probe = ca.issue('probe', { uri: ['spiffe://cluster.local/ns/shop/sa/probe'] }, { days: 2 });
  const pairs: Record<'plain' | 'mtls', Awaited<ReturnType<typeof pair>>> = { plain: await pair(redis.port, client, server, false), mtls: await pair(redis.port, client, server, true) };
  const result: Record<string, unknown> = { benchmark: 'security', rounds: opts.rounds, clients: opts.clients };
  const rows = ['| load | direct req/s | plaintext pair req/s (ratio) | mTLS pair req/s (ratio) | CPU µs/req, both proxies: plaintext → mTLS | TLS adds |', '|---|---|---|---|---|---|'];
  try {
    for (const [pipeline, requests] of [[1, opts.requestsP1], [16, opts.requestsP16]] as const) {
      const s = { direct: [] as number[], plain: [] as number[], mtls: [] as number[], plainCpu: [] as number[], mtlsCpu: [] as number[] };
      for (const p of Object.values(pairs)) await redisBenchmark(p.port, pipeline, Math.min(requests, 50_000), opts.clients);
      for (let round = 1; round <= opts.rounds; round++) {
        s.direct.push(await redisBenchmark(redis.port, pipeline, requests, opts.clients));
        for (const key of ['plain', 'mtls'] as const) {
          const procs = pairs[key].procs;
          const cpu0 = procs.reduce((n, p) => n + cpuSeconds(p.pid), 0);
          s[key].push(await redisBenchmark(pairs[key].port, pipeline, requests, opts.clients));
          s[`${key}Cpu`].push(((procs.reduce((n, p) => n + cpuSeconds(p.pid), 0) - cpu0) * 1e6) / (2 * requests));
          process.stderr.write(`P${pipeline} round ${round} ${key}: ${Math.round(s[key].at(-1)!)} req/s, ${s[`${key}Cpu`].at(-1)!.toFixed(2)} µs/req\n`);
        }
      }
      const direct = median(s.direct);
      const [plain, mtls, plainCpu, mtlsCpu] = [median(s.plain), median(s.mtls), median(s.plainCpu), median(s.mtlsCpu)];
      Object.assign(result, {
        [`p${pipeline}_direct_rps`]: Math.round(direct), [`p${pipeline}_plain_rps`]: Math.round(plain), [`p${pipeline}_mtls_rps`]: Math.round(mtls),
        [`p${pipeline}_plain_cpu_us_per_req`]: Number(plainCpu.toFixed(2)), [`p${pipeline}_mtls_cpu_us_per_req`]: Number(mtlsCpu.toFixed(2)),
        [`p${pipeline}_tls_adds_cpu_us_per_req`]: Number((mtlsCpu - plainCpu).toFixed(2)),
      });
      rows.push(`| -P ${pipeline} | ${Math.round(direct)} | ${Math.round(plain)} (${(plain / direct).toFixed(2)}) | ${Math.round(mtls)} (${(mtls / direct).toFixed(2)}) | ${plainCpu.toFixed(2)} → ${mtlsCpu.toFixed(2)} | ${(mtlsCpu - plainCpu).toFixed(2)} µs |`);
    }
    // Handshakes at the server sidecar: a client with a workload certificate, against plaintext connections.
    const serverProc = pairs.mtls.procs[1];
    const plainRate = await connectionRate(opts.handshakes, () => net.connect(pairs.plain.inboundPort, '127.0.0.1'));
    const cpu0 = cpuSeconds(serverProc.pid);
    const tlsRate = await connectionRate(opts.handshakes, () => tls.connect({ port: pairs.mtls.inboundPort, host: '127.0.0.1', ca: ca.root, cert: probe.certChain, key: probe.privateKey, checkServerIdentity: () => undefined }));
    const cpuPerHandshake = ((cpuSeconds(serverProc.pid) - cpu0) * 1e6) / opts.handshakes;
    Object.assign(result, { plaintext_connections_per_s: Math.round(plainRate), mtls_handshakes_per_s: Math.round(tlsRate), server_cpu_us_per_mtls_connection: Math.round(cpuPerHandshake) });
    rows.push('', '| new connections (one PING each, 20 at a time) | per second | server sidecar CPU µs each |', '|---|---|---|',
      `| plaintext | ${Math.round(plainRate)} | |`, `| mTLS (full handshake, P-256) | ${Math.round(tlsRate)} | ${Math.round(cpuPerHandshake)} |`);
  } finally {
    for (const p of Object.values(pairs)) for (const proc of p.procs) await proc.stop();
    await redis.stop();
    ca.remove();
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(rows.join('\n') + '\n');
  return result;
}
