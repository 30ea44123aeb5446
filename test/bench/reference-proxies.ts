// The reference proxies the Redis benchmark measures meltemi against, from Debian's packages:
// HAProxy in `mode tcp` (L4, no parsing) and twemproxy (nutcracker: L7 Redis in C). Each runs in
// the foreground on loopback with one thread, as meltemi's one worker does; a missing binary is
// reported and skipped, not an error.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports';

export interface ReferenceProxy {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

function available(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
}

async function listening(port: number, child: ChildProcess, name: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not listen on ${port}`);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function start(name: string, argv: string[], port: number): Promise<ReferenceProxy> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
  await listening(port, child, name);
  return { port, pid: child.pid!, stop: stopper(child) };
}

/** HAProxy, `mode tcp`, one thread, in front of 127.0.0.1:`upstream`; undefined without haproxy. */
export async function startHaproxy(upstream: number): Promise<ReferenceProxy | undefined> {
  if (!available('haproxy')) return undefined;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-bench-haproxy-'));
  const config = join(dir, 'haproxy.cfg');
  writeFileSync(config, `global
  nbthread 1
  maxconn 5000
defaults
  mode tcp
  timeout connect 5s
  timeout client 5m
  timeout server 5m
frontend redis
  bind 127.0.0.1:${port}
  default_backend redis
backend redis
  server s1 127.0.0.1:${upstream}
`);
  return start('haproxy', ['haproxy', '-db', '-f', config], port);
}

/** twemproxy (nutcracker) for Redis in front of 127.0.0.1:`upstream`; undefined without it. */
export async function startTwemproxy(upstream: number): Promise<ReferenceProxy | undefined> {
  if (!available('nutcracker')) return undefined;
  const [port, stats] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-bench-twemproxy-'));
  const config = join(dir, 'nutcracker.yml');
  writeFileSync(config, `redis:
  listen: 127.0.0.1:${port}
  redis: true
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  servers:
    - 127.0.0.1:${upstream}:1
`);
  return start('twemproxy', ['nutcracker', '-c', config, '-s', String(stats), '-a', '127.0.0.1', '-o', join(dir, 'nutcracker.log')], port);
}
