// The memory a sidecar holds: RSS of meltemi idle with the bundled codecs (a Redis, a Dubbo and a
// Thrift listener, so every codec is instantiated), then with 1 000 idle client connections that
// each made one request, against the Node pipe, HAProxy and twemproxy holding the same Redis
// connections. RSS from /proc after the process settles (the plugin-accepting worker ends after
// 2 s idle).

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { MeltemiProcess } from '../helpers/meltemi-process';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { startHaproxy, startTwemproxy } from './reference-proxies';

export interface MemoryBenchOptions { connections: number; settleMs: number }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line!.split(/\s+/)[1]) / 1024;
}

/** `n` connections to `port` that each did one PING and now sit idle. */
async function idleClients(port: number, n: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < n; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => new Promise<void>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('*1\r\n$4\r\nPING\r\n'));
      s.once('data', () => resolve());
      s.once('error', reject);
      sockets.push(s);
    })));
  }
  return sockets;
}

export async function memoryBench(opts: MemoryBenchOptions): Promise<Record<string, unknown>> {
  const redis = await RedisServer.start();
  // The same three listeners with 1, 2 and 4 worker threads: what a worker adds is (w4 - w2) / 2.
  const start = async (workers: number) => {
    const [redisPort, dubboPort, thriftPort] = [await freePort(), await freePort(), await freePort()];
    const proc = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
listeners:
  - { name: redis, port: ${redisPort}, protocol: redis, route_config: { routes: [ { route: { cluster: redis } } ] } }
  - { name: dubbo, port: ${dubboPort}, protocol: dubbo, route_config: { routes: [ { route: { cluster: redis } } ] } }
  - { name: thrift, port: ${thriftPort}, protocol: thrift, route_config: { routes: [ { route: { cluster: redis } } ] } }
clusters:
  - { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] }
`, redisPort, { args: ['--workers', String(workers)] });
    return { proc, port: redisPort };
  };
  const meltemis = [await start(1), await start(2), await start(4)];
  const [meltemi] = meltemis;
  const pipePort = await freePort();
  const pipe = spawn(process.execPath, [join(__dirname, 'pipe-proxy.js'), String(pipePort), String(redis.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => pipe.stdout!.once('data', () => resolve()));
  const [haproxy, twemproxy] = await Promise.all([startHaproxy(redis.port), startTwemproxy(redis.port)]).catch(async (err) => {
    pipe.kill('SIGTERM');
    for (const m of meltemis) await m.proc.stop();
    await redis.stop();
    throw err;
  });
  const targets = [
    { name: 'meltemi', port: meltemi.port, pid: meltemi.proc.pid },
    { name: 'meltemi_workers_2', port: meltemis[1].port, pid: meltemis[1].proc.pid },
    { name: 'meltemi_workers_4', port: meltemis[2].port, pid: meltemis[2].proc.pid },
    { name: 'pipe', port: pipePort, pid: pipe.pid! },
    ...(haproxy ? [{ name: 'haproxy', port: haproxy.port, pid: haproxy.pid }] : []),
    ...(twemproxy ? [{ name: 'twemproxy', port: twemproxy.port, pid: twemproxy.pid }] : []),
  ];
  const result: Record<string, unknown> = { benchmark: 'memory', connections: opts.connections };
  const rows = [`| process | idle RSS MB | with ${opts.connections} idle connections | per 1 000 connections |`, '|---|---|---|---|'];
  try {
    await sleep(opts.settleMs);
    for (const t of targets) {
      const idle = rssMb(t.pid);
      const sockets = await idleClients(t.port, opts.connections);
      await sleep(500);
      const loaded = rssMb(t.pid);
      for (const s of sockets) s.destroy();
      const per1000 = ((loaded - idle) * 1000) / opts.connections;
      result[`${t.name}_idle_rss_mb`] = Number(idle.toFixed(1));
      result[`${t.name}_rss_mb_per_1000_connections`] = Number(per1000.toFixed(2));
      rows.push(`| ${t.name} | ${idle.toFixed(1)} | ${loaded.toFixed(1)} | ${per1000.toFixed(2)} |`);
      process.stderr.write(`${t.name}: idle ${idle.toFixed(1)} MB, ${loaded.toFixed(1)} MB with ${opts.connections} connections\n`);
    }
  } finally {
    pipe.kill('SIGTERM');
    await haproxy?.stop();
    await twemproxy?.stop();
    for (const m of meltemis) await m.proc.stop();
    await redis.stop();
  }
  const perWorker = ((result.meltemi_workers_4_idle_rss_mb as number) - (result.meltemi_workers_2_idle_rss_mb as number)) / 2;
  result.meltemi_rss_mb_per_worker = Number(perWorker.toFixed(1));
  rows.push(`| each worker thread added (workers 4 − workers 2) / 2 | ${perWorker.toFixed(1)} | | |`);
  process.stdout.write(rows.join('\n') + '\n');
  return result;
}
