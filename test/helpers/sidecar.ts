// Sidecars in network namespaces for the capture and drain tests: configs, start, metrics.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NetnsLab, netnsAvailable, waitForOutput, type Host } from './netns';
import { MELTEMI_BIN, PLUGIN_DIR } from './paths';

/** Every sidecar's admin port (on its namespace's loopback; kept out of inbound capture). */
export const ADMIN = 15000;

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

/**
 * A server pod's sidecar: Redis, Thrift and Dubbo inbound in front of the application on
 * loopback; with `outbound`, also the application's own Redis calls to `outbound.vip`, sent to
 * `outbound.to` (another pod, or this pod's own address: a pod calling its own service).
 */
export function serverSidecarYaml(outbound?: { vip: string; to: string }): string {
  return `
admin: { address: 127.0.0.1, port: ${ADMIN} }
plugins: { directory: ${PLUGIN_DIR}, watch: false }
capture:
  inbound: { port: 15006 }
${outbound ? '  outbound: { port: 15001 }' : ''}
listeners:${outbound ? `
  - name: outbound_vip
    address: ${outbound.vip}
    port: 6379
    bind_to_port: false
    protocol: redis
    route_config: { name: out, routes: [ { name: all, match: {}, route: { cluster: outbound_to } } ] }` : ''}
  - name: inbound_6379
    address: 0.0.0.0
    port: 6379
    bind_to_port: false
    traffic_direction: inbound
    protocol: redis
    route_config: { name: local, routes: [ { name: app, match: {}, route: { cluster: app } } ] }
  - name: inbound_9090
    address: 0.0.0.0
    port: 9090
    bind_to_port: false
    traffic_direction: inbound
    protocol: thrift
    route_config: { name: local-thrift, routes: [ { name: app, match: {}, route: { cluster: app_thrift } } ] }
  - name: inbound_20880
    address: 0.0.0.0
    port: 20880
    bind_to_port: false
    traffic_direction: inbound
    protocol: dubbo
    route_config: { name: local-dubbo, routes: [ { name: app, match: {}, route: { cluster: app_dubbo } } ] }
clusters:
  - name: app
    endpoints: [ { address: 127.0.0.1, port: 6379 } ]
  - name: app_thrift
    endpoints: [ { address: 127.0.0.1, port: 9090 } ]
  - name: app_dubbo
    endpoints: [ { address: 127.0.0.1, port: 20880 } ]
${outbound ? `  - name: outbound_to
    endpoints: [ { address: ${outbound.to}, port: 6379 } ]` : ''}
`;
}

export function clientSidecarYaml(s1: Host, s2: Host, vip: string): string {
  return `
admin: { address: 127.0.0.1, port: ${ADMIN} }
plugins: { directory: ${PLUGIN_DIR}, watch: false }
capture:
  outbound: { port: 15001 }
listeners:
  - name: redis_vip
    address: ${vip}
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
  # The same service's Thrift port goes to s1, its Dubbo port to s2 (a method's own route).
  - name: thrift_vip
    address: ${vip}
    port: 9090
    bind_to_port: false
    protocol: thrift
    route_config: { name: thrift, routes: [ { name: echo, match: { metadata: [ { name: method, exact_match: echo } ] }, route: { cluster: s1_thrift } } ] }
  - name: dubbo_vip
    address: ${vip}
    port: 20880
    bind_to_port: false
    protocol: dubbo
    route_config: { name: dubbo, routes: [ { name: hello, match: { metadata: [ { name: method, exact_match: sayHello } ] }, route: { cluster: s2_dubbo } } ] }
clusters:
  - name: s1
    endpoints: [ { address: ${s1.ip}, port: 6379 } ]
  - name: s2
    endpoints: [ { address: ${s2.ip}, port: 6379 } ]
  - name: s1_thrift
    endpoints: [ { address: ${s1.ip}, port: 9090 } ]
  - name: s2_dubbo
    endpoints: [ { address: ${s2.ip}, port: 20880 } ]
`;
}

/** A Thrift (Echo) server and a Dubbo provider named after `host`, on its loopback at 9090 and 20880 (applications, run by root). */
export async function startRpcPeers(lab: NetnsLab, host: Host, name: string): Promise<void> {
  const peer = join(__dirname, 'netns-peer.js');
  await waitForOutput(lab.start(host, process.execPath, [peer, 'thrift-server', name, '9090']), /^up/);
  await waitForOutput(lab.start(host, process.execPath, [peer, 'dubbo-provider', name, '20880']), /^up/);
}

/** One call of `mode` (thrift-call, dubbo-call) from `host` to address:port; its printed answer. */
export function rpcCall(lab: NetnsLab, host: Host, mode: 'thrift-call' | 'dubbo-call', address: string, port: number, arg: string): string {
  return lab.run(host, process.execPath, [join(__dirname, 'netns-peer.js'), mode, address, String(port), arg]).trim();
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

