// 100 agents connected to one control plane (its own process): time from a MetaRouter file
// change to every agent having applied (and ACKed) the new routes, p50 and p99 over repeated
// changes; the control plane's resident memory before and after the agents connected.

import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { XdsConfig } from '../../runtime/config/types';
import { ConsoleLogger } from '../../runtime/core/logger';
import { RdsSubscription } from '../../runtime/xds/rds-subscription';
import { DR, SE } from '../helpers/istio-resources';
import { MELTEMI_BIN } from '../helpers/paths';
import { freePort } from '../helpers/ports';

const HOST = 'thrift.demo.svc.cluster.local';
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

function router(subset: string, n: number): string {
  return `apiVersion: metaprotocol.aeraki.io/v1alpha1
kind: MetaRouter
metadata: { name: thrift }
spec:
  hosts: [ ${HOST} ]
  routes:
    - name: change-${n}
      route: [ { destination: { host: ${HOST}, subset: ${subset} } } ]
`;
}

export async function xdsBench(opts: { agents: number; changes: number; debounceMs: number }): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-xds-bench-'));
  writeFileSync(join(dir, 'services.yaml'), SE(HOST, 9090, 'thrift', [{ address: '127.0.0.1', port: 1, version: 'v1' }, { address: '127.0.0.1', port: 2, version: 'v2' }]) + '---' + DR(HOST));
  writeFileSync(join(dir, 'router.yaml'), router('v1', 0));
  const port = await freePort();
  const cp: ChildProcess = spawn(process.execPath, [MELTEMI_BIN, 'control-plane', '--resources', dir, '--port', String(port), '--debounce', String(opts.debounceMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve) => cp.stderr!.on('data', (d) => { if (/serving RDS and ADS/.test(String(d))) resolve(); }));
  const rssIdle = rssMb(cp.pid!);

  const logger = new ConsoleLogger('silent');
  const applied: Array<{ version: string; at: number }> = [];
  const channels: grpc.Client[] = [];
  const subs: RdsSubscription[] = [];
  for (let i = 0; i < opts.agents; i++) {
    const xds: XdsConfig = { address: '127.0.0.1', port, node: { id: `sidecar~127.0.0.${i % 250}~agent-${i}.demo~demo.svc.cluster.local`, cluster: 'bench', metadata: {} }, ads: false, lds: false, drainTimeoutMs: 5000, initialBackoffMs: 100, maxBackoffMs: 1000, initialFetchTimeoutMs: 5000 };
    const channel = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    channels.push(channel);
    applied.push({ version: '', at: 0 });
    const sub = new RdsSubscription(channel, xds, `${HOST}_9090`, (_routes, version) => { applied[i] = { version, at: performance.now() }; }, logger);
    subs.push(sub);
    sub.start();
  }
  await Promise.all(subs.map((s) => s.ready));
  const rssConnected = rssMb(cp.pid!);

  const allLatencies: number[] = [];
  const agentLatencies: number[] = [];
  let rssEnd = 0;
  try {
    for (let n = 1; n <= opts.changes; n++) {
      const before = applied.map((a) => a.version);
      const file = join(dir, 'router.yaml');
      const t0 = performance.now();
      writeFileSync(`${file}.tmp`, router(n % 2 ? 'v2' : 'v1', n));
      renameSync(`${file}.tmp`, file);
      const deadline = Date.now() + 10_000;
      while (applied.some((a, i) => a.version === before[i])) {
        if (Date.now() > deadline) throw new Error(`change ${n}: ${applied.filter((a, i) => a.version === before[i]).length} agents never updated`);
        await new Promise((r) => setTimeout(r, 1));
      }
      const lat = applied.map((a) => a.at - t0);
      agentLatencies.push(...lat);
      allLatencies.push(Math.max(...lat));
      process.stderr.write(`change ${n}: all ${opts.agents} agents in ${Math.max(...lat).toFixed(1)} ms\n`);
      await new Promise((r) => setTimeout(r, opts.debounceMs + 50));
    }
  } finally {
    for (const s of subs) s.stop();
    for (const c of channels) c.close();
    rssEnd = rssMb(cp.pid!);
    cp.kill('SIGTERM');
  }
  process.stdout.write([
    `| agents | changes | debounce | all agents updated p50 / p99 (ms) | one agent p50 / p99 (ms) | control plane RSS idle / 100 agents / end (MB) |`,
    '|---|---|---|---|---|---|',
    `| ${opts.agents} | ${opts.changes} | ${opts.debounceMs} ms | ${pct(allLatencies, 50).toFixed(1)} / ${pct(allLatencies, 99).toFixed(1)} | ${pct(agentLatencies, 50).toFixed(1)} / ${pct(agentLatencies, 99).toFixed(1)} | ${rssIdle.toFixed(0)} / ${rssConnected.toFixed(0)} / ${rssEnd.toFixed(0)} |`,
  ].join('\n') + '\n');
  return {
    benchmark: 'xds', agents: opts.agents, changes: opts.changes, debounce_ms: opts.debounceMs,
    all_acked_p50_ms: Number(pct(allLatencies, 50).toFixed(1)), all_acked_p99_ms: Number(pct(allLatencies, 99).toFixed(1)),
    agent_p50_ms: Number(pct(agentLatencies, 50).toFixed(1)), agent_p99_ms: Number(pct(agentLatencies, 99).toFixed(1)),
    cp_rss_mb_idle: Math.round(rssIdle), cp_rss_mb_100_agents: Math.round(rssConnected), cp_rss_mb_end: Math.round(rssEnd),
  };
}
