// An open-loop Redis load generator: PINGs sent at a fixed rate over a few connections whatever
// the answers do, each request's latency measured from when it was due — so a stall shows in the
// tail instead of slowing the load down (no coordinated omission).

import net from 'node:net';

const PING = Buffer.from('*1\r\n$4\r\nPING\r\n');

export interface LatencyResult { sent: number; answered: number; p50: number; p99: number; p999: number }

/** Latencies in microseconds of `rate` PINGs a second for `durationMs` over `connections`. */
export async function openLoop(port: number, rate: number, durationMs: number, connections = 10): Promise<LatencyResult> {
  const sockets = await Promise.all(Array.from({ length: connections }, () => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  })));
  const due: number[][] = sockets.map(() => []);
  const heads = sockets.map(() => 0);
  const latencies: number[] = [];
  sockets.forEach((s, i) => s.on('data', (d: Buffer) => {
    const now = performance.now();
    for (let k = 0; k < d.length; k++) {
      if (d[k] !== 10) continue; // one "+PONG\r\n" per answer
      const at = due[i][heads[i]++];
      if (at !== undefined) latencies.push((now - at) * 1000);
    }
  }));
  const t0 = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const elapsed = Math.min(now - t0, durationMs);
      // Every request due by now goes out, stamped with the time it was due.
      for (const target = Math.floor((elapsed * rate) / 1000); sent < target; sent++) {
        const i = sent % connections;
        due[i].push(t0 + (sent * 1000) / rate);
        sockets[i].write(PING);
      }
      if (now - t0 >= durationMs) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await new Promise((r) => setTimeout(r, 200)); // the last answers
  for (const s of sockets) s.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { sent, answered: latencies.length, p50: q(0.5), p99: q(0.99), p999: q(0.999) };
}
