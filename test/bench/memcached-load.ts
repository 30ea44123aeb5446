// One load run against a Memcached endpoint (a child process, so the proxy's CPU is its own):
// `node memcached-load.js <port> <clients> <ms> <get|set|multiget|binary|pipeline>`. Prints {"ops","seconds"}.
// get/set/multiget: memcache-client (text protocol), one request in flight per client; multiget
// reads 10 keys per request; binary: memjs gets; pipeline: raw text connections writing 16 gets
// at a time and reading their 16 answers (the proxy's per-response path without a client library).

import net from 'node:net';
import { MemcacheClient } from 'memcache-client';
import memjs from 'memjs';

const KEYS = Array.from({ length: 100 }, (_, i) => `bench:${i}`);
const VALUE = 'v'.repeat(100);

async function pipelined(port: number, end: number): Promise<number> {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  await new Promise((r) => sock.once('connect', r));
  const batch = Buffer.from(KEYS.slice(0, 16).map((k) => `get ${k}\r\n`).join(''));
  let ops = 0;
  let pending = '';
  let waiting: (() => void) | null = null;
  sock.on('data', (d) => {
    pending += d.toString('latin1');
    if (pending.split('END\r\n').length - 1 >= 16 && waiting) { pending = ''; const w = waiting; waiting = null; w(); }
  });
  while (Date.now() < end) {
    await new Promise<void>((resolve) => { waiting = resolve; sock.write(batch); });
    ops += 16;
  }
  sock.destroy();
  return ops;
}

async function main(): Promise<void> {
  const [port, clients, ms, mode] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
  if (mode === 'binary') {
    const seed = memjs.Client.create(`127.0.0.1:${port}`, { retries: 0 });
    await Promise.all(KEYS.map((k) => seed.set(k, VALUE, {})));
    seed.close();
  } else {
    const seed = new MemcacheClient({ server: `127.0.0.1:${port}` });
    await Promise.all(KEYS.map((k) => seed.set(k, VALUE)));
    seed.shutdown();
  }
  const end = Date.now() + ms;
  let ops = 0;
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: clients }, async (_, i) => {
    if (mode === 'pipeline') {
      const done = await pipelined(port, end);
      ops += done;
      return;
    }
    if (mode === 'binary') {
      const c = memjs.Client.create(`127.0.0.1:${port}`, { retries: 0, timeout: 5 });
      while (Date.now() < end) {
        await c.get(KEYS[(i + ops) % KEYS.length]);
        ops++;
      }
      c.close();
      return;
    }
    const c = new MemcacheClient({ server: { server: `127.0.0.1:${port}`, maxConnections: 1 } });
    while (Date.now() < end) {
      const k = (i + ops) % KEYS.length;
      if (mode === 'set') await c.set(KEYS[k], VALUE);
      else if (mode === 'multiget') await c.get(KEYS.slice(k % 90, (k % 90) + 10));
      else await c.get(KEYS[k]);
      ops++;
    }
    c.shutdown();
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(JSON.stringify({ ops, seconds }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
