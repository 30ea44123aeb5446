// An open-loop load generator: requests sent at a fixed rate over a number of connections
// whatever the answers do, each request's latency measured from when it was due — so a stall
// shows in the tail instead of slowing the load down (no coordinated omission). A protocol is a
// request to repeat and a counter of the answers in what comes back.

import net from 'node:net';

export interface LatencyResult { sent: number; answered: number; p50: number; p99: number; p999: number }

export interface OpenLoopProtocol {
  readonly request: Buffer;
  /** A counter for one connection: how many whole answers each chunk completes. */
  answers(): (chunk: Buffer) => number;
}

/** Redis PING: one "+PONG\r\n" line per answer. */
export const REDIS_PING: OpenLoopProtocol = {
  request: Buffer.from('*1\r\n$4\r\nPING\r\n'),
  answers: () => (d) => {
    let n = 0;
    for (let k = 0; k < d.length; k++) if (d[k] === 10) n++;
    return n;
  },
};

/** A Thrift call with no arguments, framed binary; answers are counted by their frame lengths. */
export function thriftCall(method: string): OpenLoopProtocol {
  const name = Buffer.from(method);
  const body = Buffer.alloc(4 + 4 + name.length + 4 + 1);
  body.writeUInt32BE(0x80010001, 0); // version 1, CALL
  body.writeUInt32BE(name.length, 4);
  name.copy(body, 8);
  body.writeInt32BE(1, 8 + name.length); // seqid: the server echoes it; nothing here matches on it
  body[body.length - 1] = 0; // STOP: no arguments
  const frame = Buffer.alloc(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return {
    request: frame,
    answers: () => {
      let pending: Buffer = Buffer.alloc(0);
      return (d) => {
        pending = pending.length ? Buffer.concat([pending, d]) : d;
        let n = 0;
        let at = 0;
        while (pending.length - at >= 4 && pending.length - at >= 4 + pending.readUInt32BE(at)) {
          at += 4 + pending.readUInt32BE(at);
          n++;
        }
        pending = pending.subarray(at);
        return n;
      };
    },
  };
}

/** Latencies in microseconds of `rate` requests a second for `durationMs` over `connections`. */
export async function openLoop(port: number, rate: number, durationMs: number, protocol: OpenLoopProtocol = REDIS_PING, connections = 50): Promise<LatencyResult> {
  const sockets = await Promise.all(Array.from({ length: connections }, () => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  })));
  const due: number[][] = sockets.map(() => []);
  const heads = sockets.map(() => 0);
  const latencies: number[] = [];
  sockets.forEach((s, i) => {
    const count = protocol.answers();
    s.on('data', (d: Buffer) => {
      const now = performance.now();
      for (let n = count(d); n > 0; n--) {
        const at = due[i][heads[i]++];
        if (at !== undefined) latencies.push((now - at) * 1000);
      }
    });
  });
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
        sockets[i].write(protocol.request);
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
