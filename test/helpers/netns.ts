// Network namespaces for the sidecar tests: hosts on one bridge (in a hub namespace of its own),
// with processes started inside them, so capture rules act on real traffic that never leaves
// the namespaces this lab made. Needs root (ip netns, iptables).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { ROOT } from './paths';

/** Whether this process may build namespaces (root, with ip and iptables installed). */
export function netnsAvailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of ['ip', 'iptables', 'iptables-restore', 'setpriv']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  if (!existsSync(`${ROOT}/build/native/original-dst.node`)) return 'build/native/original-dst.node is not built (node scripts/build-native.mjs)';
  return undefined;
}

export interface Host {
  readonly ns: string;
  readonly ip: string;
}

/** Labs made by this process so far: each gets names of its own. */
let labs = 0;

export class NetnsLab {
  private readonly hub: string;
  readonly hosts = new Map<string, Host>();
  private readonly procs = new Set<ChildProcess>();
  private readonly id: string;

  /** `subnet`: the first three octets of the hosts' /24 (10.231.0). */
  constructor(readonly subnet = '10.231.0') {
    this.id = `${process.pid % 10000}${labs++}`;
    this.hub = `mlt${this.id}-hub`;
    ip('netns', 'add', this.hub);
    ipIn(this.hub, 'link', 'add', 'br0', 'type', 'bridge');
    ipIn(this.hub, 'link', 'set', 'br0', 'up');
  }

  /** A host at `<subnet>.<n>`, with loopback up and a route for `routes` (virtual service addresses) on its link. */
  addHost(name: string, n: number, routes: readonly string[] = []): Host {
    const ns = `mlt${this.id}-${name}`;
    ip('netns', 'add', ns);
    const outer = `h${this.id}${n}`.slice(0, 15);
    ip('link', 'add', outer, 'netns', this.hub, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ipIn(this.hub, 'link', 'set', outer, 'master', 'br0');
    ipIn(this.hub, 'link', 'set', outer, 'up');
    ipIn(ns, 'link', 'set', 'lo', 'up');
    ipIn(ns, 'addr', 'add', `${this.subnet}.${n}/24`, 'dev', 'eth0');
    ipIn(ns, 'link', 'set', 'eth0', 'up');
    // A service's virtual address must be routable for connect() to get as far as the capture rule.
    for (const r of routes) ipIn(ns, 'route', 'add', r, 'dev', 'eth0');
    const host = { ns, ip: `${this.subnet}.${n}` };
    this.hosts.set(name, host);
    return host;
  }

  /** Runs a command inside `host` to completion; its stdout. */
  run(host: Host, cmd: string, args: readonly string[], input?: string): string {
    return execFileSync('ip', ['netns', 'exec', host.ns, cmd, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
  }

  /** Runs a command inside `host` without waiting (stopped by destroy()). `uid`: as that user and group, able to read any file. */
  start(host: Host, cmd: string, args: readonly string[], opts: { uid?: number; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const asUser = opts.uid === undefined ? [] : ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups',
      // A test tree may sit in a 0700 temp directory: reading it must not depend on the user.
      '--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search'];
    const proc = spawn('ip', ['netns', 'exec', host.ns, ...asUser, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    this.procs.add(proc);
    proc.once('exit', () => this.procs.delete(proc));
    return proc;
  }

  /** Stops every process started here and removes the namespaces. */
  async destroy(): Promise<void> {
    const exits = [...this.procs].map((p) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : once(p, 'exit')));
    for (const p of this.procs) p.kill('SIGKILL');
    await Promise.all(exits);
    for (const host of [...this.hosts.values()].map((h) => h.ns).concat(this.hub)) {
      // Anything else left inside (a grandchild) goes with its namespace's processes.
      try {
        const pids = execFileSync('ip', ['netns', 'pids', host], { encoding: 'utf8' }).split('\n').filter(Boolean);
        for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
      } catch { /* already gone */ }
      try {
        ip('netns', 'del', host);
      } catch { /* already gone */ }
    }
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function ipIn(ns: string, ...args: string[]): void {
  ip('netns', 'exec', ns, 'ip', ...args);
}

/** Resolves with the first line of `proc`'s output matching `pattern`; rejects if it exits first. */
export function waitForOutput(proc: ChildProcess, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      const m = seen.split('\n').find((l) => pattern.test(l));
      if (m !== undefined) done(undefined, m);
    };
    const onExit = (code: number | null) => done(new Error(`exited (${code}) before printing ${pattern}:\n${seen}`));
    const timer = setTimeout(() => done(new Error(`no ${pattern} within ${timeoutMs} ms:\n${seen}`)), timeoutMs);
    const done = (err: Error | undefined, line?: string) => {
      clearTimeout(timer);
      proc.stdout?.off('data', onData);
      proc.stderr?.off('data', onData);
      proc.off('exit', onExit);
      if (err) reject(err);
      else resolve(line!);
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('exit', onExit);
  });
}
