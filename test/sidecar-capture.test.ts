// Transparent capture in real network namespaces: unmodified clients dial a service's address,
// iptables (installed by `meltemi iptables`) redirects them into meltemi, which dispatches by the
// original destination; servers' sidecars capture inbound. Nothing leaves the lab's namespaces.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NetnsLab, netnsAvailable, waitForOutput, type Host } from './helpers/netns';
import { MELTEMI_BIN, PLUGIN_DIR } from './helpers/paths';

const VIP = '10.232.0.10';
const ADMIN = 15000;

/** Skipped only off CI (not root, no iptables); .ci/run sets MELTEMI_REQUIRE_NETNS so it runs there. */
export function requireNetns(ctx: Mocha.Context): void {
  const missing = netnsAvailable();
  if (!missing) return;
  if (process.env.MELTEMI_REQUIRE_NETNS) throw new Error(`network-namespace tests cannot run: ${missing}`);
  ctx.skip();
}

export function writeConfig(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-ns-'));
  const file = join(dir, 'meltemi.yaml');
  writeFileSync(file, yaml);
  return file;
}

/** Starts meltemi in `host` as `uid`; resolves once its admin port is up. */
export async function startSidecar(lab: NetnsLab, host: Host, yaml: string, uid = 1337, args: string[] = []): Promise<ChildProcess> {
  const proc = lab.start(host, process.execPath, [MELTEMI_BIN, 'run', '--config', writeConfig(yaml), '--workers', '1', ...args], { uid });
  await waitForOutput(proc, /admin on /);
  return proc;
}

/** A metric's value from `host`'s admin port (sum over series matching every label in `labels`). */
export function metric(lab: NetnsLab, host: Host, name: string, labels: Record<string, string> = {}): number {
  const text = lab.run(host, 'curl', ['-sf', `http://127.0.0.1:${ADMIN}/metrics`]);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export function serverSidecarYaml(): string {
  return `
admin: { address: 127.0.0.1, port: ${ADMIN} }
plugins: { directory: ${PLUGIN_DIR}, watch: false }
capture:
  inbound: { port: 15006 }
listeners:
  - name: inbound_6379
    address: 0.0.0.0
    port: 6379
    bind_to_port: false
    traffic_direction: inbound
    protocol: redis
    route_config: { name: local, routes: [ { name: app, match: {}, route: { cluster: app } } ] }
clusters:
  - name: app
    endpoints: [ { address: 127.0.0.1, port: 6379 } ]
`;
}

export function clientSidecarYaml(s1: Host, s2: Host): string {
  return `
admin: { address: 127.0.0.1, port: ${ADMIN} }
plugins: { directory: ${PLUGIN_DIR}, watch: false }
capture:
  outbound: { port: 15001 }
listeners:
  - name: redis_vip
    address: ${VIP}
    port: 6379
    bind_to_port: false
    protocol: redis
    route_config:
      name: redis
      routes:
        - name: a-keys
          match: { metadata: [ { name: key, prefix_match: "a:" } ] }
          route: { cluster: s1 }
        - name: rest
          match: {}
          route: { cluster: s2 }
clusters:
  - name: s1
    endpoints: [ { address: ${s1.ip}, port: 6379 } ]
  - name: s2
    endpoints: [ { address: ${s2.ip}, port: 6379 } ]
`;
}

/** A TCP echo server on `port` of every address of `host`, run by root (an application, not the proxy). */
export function startEcho(lab: NetnsLab, host: Host, port: number): Promise<string> {
  const proc = lab.start(host, process.execPath, ['-e', `require('net').createServer((s) => s.pipe(s)).listen(${port}, '0.0.0.0', () => console.log('echo up'))`]);
  return waitForOutput(proc, /echo up/);
}

/** Sends `text` from `host` to address:port as plain TCP and returns what came back before the server closed (or 2 s). */
export function tcpExchange(lab: NetnsLab, host: Host, address: string, port: number, text: string): string {
  return lab.run(host, process.execPath, ['-e', `
    const s = require('net').connect(${port}, '${address}');
    let got = '';
    s.on('data', (d) => { got += d; if (got.length >= ${text.length}) s.end(); });
    s.on('connect', () => s.write(${JSON.stringify(text)}));
    s.on('error', (e) => { process.stdout.write('ERROR ' + e.code); process.exit(0); });
    s.on('close', () => { process.stdout.write(got); process.exit(0); });
    setTimeout(() => { process.stdout.write(got || 'TIMEOUT'); process.exit(0); }, 2000);
  `]);
}

describe('sidecar: transparent capture in network namespaces', function () {
  this.timeout(60_000);
  let lab: NetnsLab;
  let client: Host;
  let s1: Host;
  let s2: Host;

  before(async function () {
    requireNetns(this);
    lab = new NetnsLab('10.231.0');
    client = lab.addHost('client', 1, ['10.232.0.0/16']);
    s1 = lab.addHost('s1', 2);
    s2 = lab.addHost('s2', 3);
    for (const s of [s1, s2]) {
      // The application listens on loopback only: it is reachable from outside through the inbound sidecar or not at all.
      const redis = lab.start(s, 'redis-server', ['--port', '6379', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
      await waitForOutput(redis, /Ready to accept connections/);
      await startEcho(lab, s, 7000);
      lab.run(s, process.execPath, [MELTEMI_BIN, 'iptables', '--exclude-inbound-ports', `${ADMIN},22`]);
      await startSidecar(lab, s, serverSidecarYaml());
    }
    lab.run(client, process.execPath, [MELTEMI_BIN, 'iptables', '--inbound-ports', '']);
    await startSidecar(lab, client, clientSidecarYaml(s1, s2));
  });

  after(async () => {
    await lab?.destroy();
  });

  it('routes an unmodified redis-cli by key across two server namespaces, through both sides\' capture', () => {
    const cli = (key: string, value: string) => lab.run(client, 'redis-cli', ['-h', VIP, '-p', '6379', 'SET', key, value]).trim();
    assert.equal(cli('a:one', 'to-s1'), 'OK');
    assert.equal(cli('b:one', 'to-s2'), 'OK');
    // Read on each server's own loopback, past every proxy: where the writes really landed.
    const get = (host: Host, key: string) => lab.run(host, 'redis-cli', ['-p', '6379', 'GET', key]).trim();
    assert.equal(get(s1, 'a:one'), 'to-s1');
    assert.equal(get(s1, 'b:one'), '');
    assert.equal(get(s2, 'b:one'), 'to-s2');
    assert.equal(get(s2, 'a:one'), '');
    assert.ok(metric(lab, client, 'meltemi_capture_connections_total', { capture: 'outbound', outcome: 'listener' }) >= 2);
    assert.ok(metric(lab, s1, 'meltemi_capture_connections_total', { capture: 'inbound', outcome: 'listener' }) >= 1);
    assert.equal(metric(lab, s1, 'meltemi_requests_total', { listener: 'inbound_6379' }), 1);
    // Each side reports as Istio's sidecars do: source on the client, destination on the server.
    assert.ok(metric(lab, client, 'istio_requests_total', { reporter: 'source' }) >= 2);
    assert.equal(metric(lab, s2, 'istio_requests_total', { reporter: 'destination' }), 1);
  });

  it('passes a port no listener serves through as plain TCP, outbound and inbound', () => {
    assert.equal(tcpExchange(lab, client, s1.ip, 7000, 'hello through'), 'hello through');
    assert.ok(metric(lab, client, 'meltemi_capture_connections_total', { capture: 'outbound', outcome: 'passthrough' }) >= 1);
    // On the server, the echo server was reached through the inbound sidecar, from 127.0.0.6.
    assert.ok(metric(lab, s1, 'meltemi_capture_connections_total', { capture: 'inbound', outcome: 'passthrough' }) >= 1);
  });

  it('exempts the proxy\'s UID: its own connections are not captured again', () => {
    // Had the proxy's connection to s1 been captured, the loop counter would show it, and the SET
    // above would have failed. Its one upstream connection per cluster is all there is.
    assert.equal(metric(lab, client, 'meltemi_capture_connections_total', { capture: 'outbound', outcome: 'loop' }), 0);
    assert.equal(lab.run(client, 'redis-cli', ['-h', VIP, '-p', '6379', 'GET', 'a:one']).trim(), 'to-s1');
  });

  it('refuses, and counts, its own traffic when the rules do not exempt its UID (no loop)', async () => {
    const looper = lab.addHost('looper', 4, ['10.232.0.0/16']);
    lab.run(looper, process.execPath, [MELTEMI_BIN, 'iptables', '--inbound-ports', '']);
    // Rules for UID/GID 1337, proxy run as 1338: its connection out is redirected back to it.
    await startSidecar(lab, looper, clientSidecarYaml(s1, s2), 1338);
    const reply = lab.run(looper, 'redis-cli', ['-h', VIP, '-p', '6379', 'GET', 'a:one']).trim();
    assert.notEqual(reply, 'to-s1');
    assert.ok(metric(lab, looper, 'meltemi_capture_connections_total', { capture: 'outbound', outcome: 'loop' }) >= 1);
    assert.equal(lab.run(s1, 'redis-cli', ['-p', '6379', 'GET', 'a:one']).trim(), 'to-s1');
  });

  it('installs rules idempotently and removes them', () => {
    const save = (h: Host) => lab.run(h, 'iptables-save', ['-t', 'nat']).split('\n').filter((l) => l.startsWith('-A')).sort();
    const before = save(s2);
    lab.run(s2, process.execPath, [MELTEMI_BIN, 'iptables', '--exclude-inbound-ports', `${ADMIN},22`]);
    assert.deepEqual(save(s2), before);
    lab.run(s2, process.execPath, [MELTEMI_BIN, 'iptables', '--remove']);
    assert.deepEqual(save(s2), []);
    lab.run(s2, process.execPath, [MELTEMI_BIN, 'iptables', '--exclude-inbound-ports', `${ADMIN},22`]);
    assert.deepEqual(save(s2), before);
  });
});
