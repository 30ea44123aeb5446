// Graceful drain of a server sidecar under load, in network namespaces: the client's sidecar
// balances GETs over two server pods; one pod's sidecar gets SIGTERM mid-load. Readiness fails,
// its listeners stop accepting, its connections close once idle, it exits once none is left, and
// the client sees no failed request (the client sidecar retries refused connects on the other pod).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetnsLab, waitForOutput, type Host } from './helpers/netns';
import { MELTEMI_BIN, PLUGIN_DIR } from './helpers/paths';
import { metric, requireNetns, serverSidecarYaml, startSidecar } from './helpers/sidecar';

const VIP = '10.232.1.10';

function clientYaml(s1: Host, s2: Host): string {
  return `
admin: { address: 127.0.0.1, port: 15000 }
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
        - name: all
          match: {}
          route:
            cluster: backend
            retry_policy: { retry_on: [connect-failure, reset, refused], num_retries: 3, idempotent: true }
clusters:
  - name: backend
    endpoints: [ { address: ${s1.ip}, port: 6379 }, { address: ${s2.ip}, port: 6379 } ]
`;
}

describe('sidecar: graceful drain under load', function () {
  this.timeout(90_000);
  let lab: NetnsLab;

  before(function () {
    requireNetns(this);
    lab = new NetnsLab('10.231.1');
  });

  after(async () => {
    await lab?.destroy();
  });

  it('drains a server sidecar on SIGTERM with 0 failed requests, failing readiness for drain.min_duration, its outbound side still open', async () => {
    const client = lab.addHost('client', 1, ['10.232.1.0/24']);
    const s1 = lab.addHost('s1', 2, ['10.232.1.0/24']);
    const s2 = lab.addHost('s2', 3);
    const sidecars = new Map<Host, ReturnType<NetnsLab['start']>>();
    for (const s of [s1, s2]) {
      const redis = lab.start(s, 'redis-server', ['--port', '6379', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
      await waitForOutput(redis, /Ready to accept connections/);
      lab.run(s, 'redis-cli', ['-p', '6379', 'SET', 'drain:key', 'value']);
      lab.run(s, process.execPath, [MELTEMI_BIN, 'iptables', '--exclude-inbound-ports', '15000']);
      // A minimum drain longer than the load needs to settle: readiness is seen failing meanwhile.
      // s1's application calls the service too (served by s2), and must still reach it while s1 drains.
      sidecars.set(s, await startSidecar(lab, s, `${serverSidecarYaml(s === s1 ? { vip: VIP, to: s2.ip } : undefined)}\ndrain: { timeout: 30s, min_duration: 3s }\n`));
    }
    lab.run(client, process.execPath, [MELTEMI_BIN, 'iptables', '--inbound-ports', '']);
    await startSidecar(lab, client, clientYaml(s1, s2));

    const stopFile = join(mkdtempSync(join(tmpdir(), 'meltemi-drain-')), 'stop');
    const load = lab.start(client, process.execPath, [join(__dirname, 'helpers', 'redis-load.js'), VIP, '6379', '8', stopFile]);
    let result = '';
    load.stdout!.on('data', (d: Buffer) => { result += d.toString(); });
    await waitForOutput(load, /load running/);
    // Both pods serve before the drain.
    await until(() => metric(lab, s1, 'meltemi_requests_total') > 200 && metric(lab, s2, 'meltemi_requests_total') > 200);

    const draining = sidecars.get(s1)!;
    let stderr = '';
    draining.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = once(draining, 'close'); // after its output is all read
    draining.kill('SIGTERM');
    await until(() => lab.run(s1, 'curl', ['-s', 'http://127.0.0.1:15000/ready']).trim() === 'DRAINING');
    // The draining pod's own way out stays open (Istio drains inbound only).
    assert.equal(lab.run(s1, 'redis-cli', ['-h', VIP, '-p', '6379', 'GET', 'drain:key']).trim(), 'value');
    const [code] = await exited;
    assert.equal(code, 0);
    assert.match(stderr, /drain finished: no connection left/);

    // The load goes on against the pod that is left, then stops.
    const s2Before = metric(lab, s2, 'meltemi_requests_total');
    await until(() => metric(lab, s2, 'meltemi_requests_total') > s2Before + 200);
    writeFileSync(stopFile, '');
    await once(load, 'exit');
    const { ok, failed, errors } = JSON.parse(result.trim().split('\n').pop()!) as { ok: number; failed: number; errors: string[] };
    assert.equal(failed, 0, `failed requests: ${errors.join('; ')}`);
    assert.ok(ok > 400);
  });
});

/** Polls `check` every 50 ms until it holds (the mocha timeout bounds it). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 50));
}
