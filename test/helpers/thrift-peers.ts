// Real Apache Thrift peers: services generated from test/fixtures/thrift/services.thrift by the
// thrift compiler (Debian's thrift-compiler) and served/called with the `thrift` npm library.

import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type net from 'node:net';
import { join } from 'node:path';
import { ROOT } from './paths';

/* eslint-disable @typescript-eslint/no-require-imports */
const thrift = require('thrift');
// The library warns ("SeqId already set") when async handlers overlap on one connection; the
// replies are still right (the tests check each one), so its logging is switched off (errors still reach the tests as exceptions).
require('thrift/lib/nodejs/lib/thrift/log').setLogLevel('off');

export type Transport = 'framed' | 'buffered';
export type Protocol = 'binary' | 'compact';
export interface Wire { transport: Transport; protocol: Protocol }

const OUT = join(ROOT, 'build', 'test-thrift');
let generated: { Echo: unknown; Calc: unknown; types: { Oops: new (a: { why: string }) => Error } } | undefined;

/** Runs the thrift compiler once per process. */
export function services() {
  if (!generated) {
    mkdirSync(OUT, { recursive: true });
    execFileSync('thrift', ['--gen', 'js:node,es6', '-out', OUT, join(ROOT, 'test/fixtures/thrift/services.thrift')]);
    generated = { Echo: require(join(OUT, 'Echo.js')), Calc: require(join(OUT, 'Calc.js')), types: require(join(OUT, 'services_types.js')) };
  }
  return generated;
}

function options(w: Wire) {
  return {
    transport: w.transport === 'framed' ? thrift.TFramedTransport : thrift.TBufferedTransport,
    protocol: w.protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol,
  };
}

export interface ThriftServer {
  port: number;
  notes: string[];
  calls: number;
  stop(): Promise<void>;
}

async function listen(server: net.Server, at: { host?: string; port?: number } = {}): Promise<number> {
  await new Promise<void>((r) => server.listen(at.port ?? 0, at.host ?? '127.0.0.1', () => r()));
  return (server.address() as net.AddressInfo).port;
}

function echoHandler(name: string, state: { notes: string[]; calls: number }) {
  const { types } = services();
  return {
    echo: async (msg: string, tags: Map<string, string> | Record<string, string>, nums: unknown[], flags: unknown) => {
      state.calls++;
      const pairs = tags instanceof Map ? [...tags] : Object.entries(tags);
      const set = flags instanceof Set ? [...flags] : (flags as unknown[]);
      return `${name}:${msg}:${JSON.stringify(pairs)}:${nums.map(String).join(',')}:${JSON.stringify(set)}`;
    },
    notify: async (msg: string) => { state.notes.push(msg); },
    who: async () => { state.calls++; return name; },
    big: async (data: Buffer) => { state.calls++; return Buffer.concat([data, Buffer.from(name)]); },
    fail: async (why: string) => { state.calls++; throw new types.Oops({ why: `${name}:${why}` }); },
  };
}

/** An Echo server named `name` (its `who()` answer), or a multiplexed Echo+Calc server. */
export async function startThriftServer(name: string, wire: Wire, opts: { multiplexed?: boolean; host?: string; port?: number } = {}): Promise<ThriftServer> {
  const { Echo, Calc } = services();
  const state = { notes: [] as string[], calls: 0 };
  let server: net.Server;
  if (opts.multiplexed) {
    const processor = new thrift.MultiplexedProcessor();
    processor.registerProcessor('Echo', new (Echo as { Processor: new (h: unknown) => unknown }).Processor(echoHandler(name, state)));
    processor.registerProcessor('Calc', new (Calc as { Processor: new (h: unknown) => unknown }).Processor({
      add: async (a: number, b: number) => { state.calls++; return a + b; },
      who: async () => `${name}-calc`,
    }));
    server = thrift.createMultiplexServer(processor, options(wire));
  } else {
    server = thrift.createServer(Echo, echoHandler(name, state), options(wire));
  }
  server.on('error', () => {});
  const port = await listen(server, opts);
  return {
    port,
    notes: state.notes,
    get calls() { return state.calls; },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface ThriftClients {
  echo: any;
  calc: any;
  close(): void;
}

export async function thriftClient(port: number, wire: Wire, opts: { multiplexed?: boolean; host?: string } = {}): Promise<ThriftClients> {
  const { Echo, Calc } = services();
  const connection = thrift.createConnection(opts.host ?? '127.0.0.1', port, { ...options(wire), connect_timeout: 3000, max_attempts: 1 });
  connection.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    connection.once('connect', resolve);
    connection.once('error', reject);
  });
  if (opts.multiplexed) {
    const mux = new thrift.Multiplexer();
    return { echo: mux.createClient('Echo', Echo, connection), calc: mux.createClient('Calc', Calc, connection), close: () => connection.end() };
  }
  return { echo: thrift.createClient(Echo, connection), calc: undefined, close: () => connection.end() };
}
