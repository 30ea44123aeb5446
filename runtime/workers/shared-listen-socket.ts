// One listening socket shared by every worker thread, each through a descriptor of its own.
//
// Node 20 has no SO_REUSEPORT (`reusePort` arrived in 22.12) and cannot pass a handle to a
// worker thread. Threads do share the process's descriptor table, so the primary binds the
// socket and each worker listens on a duplicate of its descriptor: the kernel queues
// connections on the one socket and whichever worker's loop is free accepts. Each worker must
// own its duplicate: if two threads watched one descriptor, a worker dying would close it under
// the others, and the number, reused by the next socket any thread opens, would be watched
// twice. Node offers no dup(); a child process does it: given the descriptors as stdio, it
// sends them back over its IPC channel (SCM_RIGHTS), which makes fresh descriptors in the
// thread that spawned it. The primary's bound socket is never polled, so it accepts nothing.

import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { MeltemiError } from '../core/errors';

/** The parts of Node's internal TCP handle used here (tcp_wrap is not a public module). */
interface TcpHandle {
  readonly fd: number;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  getsockname(out: { port?: number }): number;
  close(cb?: () => void): void;
}

interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  constants: { SERVER: number };
}

/** A bound socket the primary holds open for the workers (it never listens or accepts). */
export class BoundSocket {
  private constructor(private readonly handle: TcpHandle, readonly port: number) {}

  get fd(): number {
    return this.handle.fd;
  }

  static async bind(address: string, port: number, what: string): Promise<BoundSocket> {
    const fail = (reason: string) => new MeltemiError('MELTEMI_LISTEN_FAILED', `${what} cannot listen on ${address}:${port}: ${reason}`);
    let ip = address;
    if (net.isIP(ip) === 0) {
      try {
        ip = (await lookup(address)).address;
      } catch (err) {
        throw fail((err as Error).message);
      }
    }
    // process.binding is deprecated in documentation only; tcp_wrap is on its allow-list in Node 20.
    const { TCP, constants } = (process as unknown as { binding(name: string): TcpWrapBinding }).binding('tcp_wrap');
    const handle = new TCP(constants.SERVER);
    const rc = net.isIPv6(ip) ? handle.bind6(ip, port, 0) : handle.bind(ip, port);
    if (rc !== 0) {
      handle.close();
      throw fail(getSystemErrorName(rc));
    }
    // libuv reports EADDRINUSE from bind() only at listen(), which the primary never calls: a
    // socket left unbound shows port 0 here (and would listen on a random port in the workers).
    const out: { port?: number } = {};
    handle.getsockname(out);
    if (!out.port || (port !== 0 && out.port !== port)) {
      handle.close();
      throw fail('EADDRINUSE');
    }
    return new BoundSocket(handle, out.port);
  }

  close(): void {
    this.handle.close();
  }
}

/**
 * Sends each descriptor it was given (fd 4 on) back to its parent, one at a time: the next goes
 * once the parent acknowledged the last (Node delivers one handle per message, and a channel
 * closed while one is in flight loses it), then it leaves.
 */
const DUP_CHILD = `
const net = require('node:net');
const n = Number(process.argv[1]);
const sendOne = (i) => process.send({ i }, new net.Socket({ fd: 4 + i, readable: false, writable: false })._handle);
process.on('message', (m) => { if (m.ack + 1 < n) sendOne(m.ack + 1); else process.disconnect(); });
sendOne(0);`;

const DUP_TIMEOUT_MS = 15_000;

/**
 * Duplicates of `fds` owned by the calling thread, as handles `net.Server.listen` takes. The
 * child is spawned from the calling thread so its IPC channel, and the descriptors it sends,
 * land in this thread's loop.
 */
export function duplicateListenSockets(fds: readonly number[], ports: readonly number[]): Promise<object[]> {
  if (fds.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', DUP_CHILD, String(fds.length)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc', ...fds],
      // The parent's flags (--cpu-prof, --inspect) must not apply to this helper.
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const got: object[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), DUP_TIMEOUT_MS);
    child.on('message', (m: { i?: unknown }, handle: unknown) => {
      if (typeof m?.i !== 'number' || !handle || typeof handle !== 'object') return;
      got[m.i] = handle;
      child.send({ ack: m.i });
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new MeltemiError('MELTEMI_LISTEN_FAILED', `cannot share the listening sockets with a worker: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const complete = got.filter(Boolean).length === fds.length;
      // The descriptors must still be the primary's sockets: a number closed and reused meanwhile
      // would be some other socket (or file) of this process.
      const wrong = got.findIndex((h, i) => boundPortOf(h) !== ports[i]);
      if (complete && wrong >= 0) {
        for (const h of got) (h as { close?: () => void }).close?.();
        reject(new MeltemiError('MELTEMI_LISTEN_FAILED', `cannot share the listening sockets with a worker: descriptor ${fds[wrong]} is no longer the listener's socket (port ${ports[wrong]})`));
      } else if (complete) resolve(got);
      else reject(new MeltemiError('MELTEMI_LISTEN_FAILED', `cannot share the listening sockets with a worker: the helper process ended (${signal ?? code}) after ${got.length} of ${fds.length}`));
    });
  });
}

/** The port a received TCP handle is bound to (0 when it is not a bound TCP socket). */
function boundPortOf(handle: object): number {
  const out: { port?: number } = {};
  const h = handle as Partial<TcpHandle>;
  if (typeof h.getsockname !== 'function' || h.getsockname(out) !== 0) return 0;
  return out.port ?? 0;
}

/** Listens `server` on a handle from duplicateListenSockets; `where` (address:port) names it in errors. */
export function listenOnHandle(server: net.Server, handle: object, what: string, where: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new MeltemiError('MELTEMI_LISTEN_FAILED', `${what} cannot listen on ${where}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(handle, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
