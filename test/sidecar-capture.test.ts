// Transparent capture in real network namespaces: unmodified clients dial a service's address,
// iptables (installed by `meltemi iptables`) redirects them into meltemi, which dispatches by the
// original destination; servers' sidecars capture inbound. Nothing leaves the lab's namespaces.

import assert from 'node:assert/strict';
import { NetnsLab, waitForOutput, type Host } from './helpers/netns';
import { MELTEMI_BIN } from './helpers/paths';
import { ADMIN, clientSidecarYaml, metric, requireNetns, serverSidecarYaml, rpcCall, startEcho, startRpcPeers, startSidecar, tcpExchange } from './helpers/sidecar';

const VIP = '10.232.0.10';

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
    s1 = lab.addHost('s1', 2, ['10.232.0.0/16']);
    s2 = lab.addHost('s2', 3);
    for (const s of [s1, s2]) {
      // The application listens on loopback only: it is reachable from outside through the inbound sidecar or not at all.
      const redis = lab.start(s, 'redis-server', ['--port', '6379', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
      await waitForOutput(redis, /Ready to accept connections/);
      await startEcho(lab, s, 7000);
      await startRpcPeers(lab, s, s === s1 ? 's1' : 's2');
      lab.run(s, process.execPath, [MELTEMI_BIN, 'iptables', '--exclude-inbound-ports', `${ADMIN},22`]);
      // s1's application also calls the service, whose endpoint is s1 itself.
      await startSidecar(lab, s, serverSidecarYaml(s === s1 ? { vip: VIP, to: s1.ip } : undefined));
    }
    lab.run(client, process.execPath, [MELTEMI_BIN, 'iptables', '--inbound-ports', '']);
    await startSidecar(lab, client, clientSidecarYaml(s1, s2, VIP));
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

  it('captures unmodified Thrift and Dubbo clients dialling the same service address, routed by method', () => {
    // Apache Thrift's client (framed, binary) and a hessian2 Dubbo consumer, both dialling the VIP.
    assert.match(rpcCall(lab, client, 'thrift-call', VIP, 9090, 'hi'), /^s1:hi:/);
    assert.equal(rpcCall(lab, client, 'dubbo-call', VIP, 20880, 'mesh'), '"hello mesh from s2"');
    assert.equal(metric(lab, s1, 'meltemi_requests_total', { listener: 'inbound_9090' }), 1);
    assert.equal(metric(lab, s2, 'meltemi_requests_total', { listener: 'inbound_20880' }), 1);
    assert.equal(metric(lab, client, 'meltemi_requests_total', { listener: 'dubbo_vip', cluster: 's2_dubbo' }), 1);
  });

  it('serves a pod calling its own service: out through its sidecar and back in through the inbound side', () => {
    assert.equal(lab.run(s1, 'redis-cli', ['-h', VIP, '-p', '6379', 'SET', 'self:k', 'mine']).trim(), 'OK');
    assert.equal(lab.run(s1, 'redis-cli', ['-p', '6379', 'GET', 'self:k']).trim(), 'mine');
    // The proxy's own connection to its pod's address is inbound traffic, not a loop.
    assert.equal(metric(lab, s1, 'meltemi_capture_connections_total', { capture: 'inbound', outcome: 'loop' }), 0);
    assert.equal(metric(lab, s1, 'meltemi_requests_total', { listener: 'outbound_vip' }), 1);
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
    await startSidecar(lab, looper, clientSidecarYaml(s1, s2, VIP), 1338);
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
