// meltemi as a separate process (benchmarks measure its CPU from /proc; tests of the CLI).

import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { MELTEMI_BIN } from './paths';

export class MeltemiProcess {
  private constructor(private readonly proc: ChildProcess, readonly output: { text: string }) {}

  get pid(): number {
    return this.proc.pid!;
  }

  /** Starts `meltemi run` with `yaml` and resolves once `port` accepts connections. */
  /** `args`: more `meltemi run` arguments (`--workers 1`). */
  static async start(yaml: string, port: number, opts: { prefix?: string[]; nodeArgs?: string[]; args?: string[] } = {}): Promise<MeltemiProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-'));
    const file = join(dir, 'meltemi.yaml');
    writeFileSync(file, yaml);
    // MELTEMI_NODE_ARGS passes flags to the proxy's node (for example --cpu-prof to profile a test).
    const nodeArgs = [...(process.env.MELTEMI_NODE_ARGS ? process.env.MELTEMI_NODE_ARGS.split(' ') : []), ...(opts.nodeArgs ?? [])];
    // `prefix` runs node under another command (prlimit, to give the proxy a small fd limit).
    const argv = [process.execPath, ...nodeArgs, MELTEMI_BIN, 'run', '--config', file, ...(opts.args ?? [])];
    const [cmd, ...args] = [...(opts.prefix ?? []), ...argv];
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { text: '' };
    const m = new MeltemiProcess(proc, output);
    const onData = (d: Buffer) => { output.text += d.toString(); };
    proc.stderr!.on('data', onData);
    proc.stdout!.on('data', onData);
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (proc.exitCode !== null) throw new Error(`meltemi exited with ${proc.exitCode}:\n${output.text}`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`meltemi did not listen on ${port}:\n${output.text}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return m;
  }

  /** SIGTERM, then SIGKILL after 3 s; resolves with the exit code (null when killed). */
  async stop(): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc.exitCode;
    const exited = new Promise<number | null>((r) => this.proc.once('exit', (code) => r(code)));
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}
