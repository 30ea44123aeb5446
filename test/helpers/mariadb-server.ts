// A real MariaDB server (Debian's mariadbd) on a free loopback port with its own data directory
// under the OS temp dir, stopped (and its directory removed) by `stop()`. Set up over its Unix
// socket as root; tests connect over TCP with the users `setup` creates.

import { ChildProcess, spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { freePort } from './ports';

const run = promisify(execFile);

export class MariaDbServer {
  private constructor(readonly port: number, readonly socket: string, private readonly dir: string, private readonly proc: ChildProcess) {}

  static async start(): Promise<MariaDbServer> {
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-mariadb-'));
    const data = join(dir, 'data');
    const user = process.getuid?.() === 0 ? ['--user=root'] : [];
    await run('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...user]);
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const socket = join(dir, 'mysqld.sock');
      const proc = spawn('mariadbd', [
        '--no-defaults', `--datadir=${data}`, `--socket=${socket}`, `--port=${port}`, '--bind-address=127.0.0.1',
        '--skip-name-resolve', '--skip-log-bin', '--innodb-buffer-pool-size=16M', '--innodb-log-file-size=8M',
        '--performance-schema=OFF', '--max-connections=500', '--local-infile=1', `--pid-file=${join(dir, 'mysqld.pid')}`, ...user,
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      proc.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
      const server = new MariaDbServer(port, socket, dir, proc);
      try {
        await server.waitReady(() => log);
        return server;
      } catch (err) {
        await server.kill();
        if (attempt >= 2) {
          rmSync(dir, { recursive: true, force: true });
          throw err;
        }
      }
    }
  }

  private async waitReady(log: () => string): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`mariadbd exited with ${this.proc.exitCode}: ${log().slice(-600)}`);
      if (log().includes('ready for connections')) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`mariadbd on port ${this.port} did not become ready: ${log().slice(-600)}`);
  }

  /** Runs statements as root over the Unix socket (users, databases, grants). */
  async admin(sql: string): Promise<void> {
    const conn = await mysql.createConnection({ socketPath: this.socket, user: 'root', multipleStatements: true });
    try {
      await conn.query(sql);
    } finally {
      await conn.end();
    }
  }

  private async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
