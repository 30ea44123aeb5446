// The latency probe's thread: one request in flight, sent again as soon as it is answered.

import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';

const { port, request, reply } = workerData as { port: number; request: string; reply: string };
const samples: number[] = [];
let lost = 0;
let stopping = false;
let sentAt = 0;
let received = '';

const socket = net.connect(port, '127.0.0.1', () => {
  parentPort!.postMessage({ started: true });
  send();
});
socket.setNoDelay(true);
socket.on('error', (err) => { if (!stopping) parentPort!.postMessage({ started: false, error: err.message }); });
socket.on('close', () => { if (!stopping) lost++; });
socket.on('data', (d) => {
  received += d.toString('latin1');
  if (received.length < reply.length) return;
  if (received !== reply) lost++;
  samples.push(performance.now() - sentAt);
  if (stopping) finish();
  else send();
});

function send(): void {
  received = '';
  sentAt = performance.now();
  socket.write(request);
}

let finished = false;
function finish(): void {
  if (finished) return;
  finished = true;
  socket.destroy();
  const s = samples.sort((a, b) => a - b);
  const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : Number.NaN);
  parentPort!.postMessage({ count: s.length, p50: at(0.5), p99: at(0.99), max: s.length ? s[s.length - 1] : Number.NaN, lost });
}

parentPort!.on('message', () => {
  stopping = true;
  if (socket.destroyed) return finish();
  setTimeout(() => { lost++; finish(); }, 2000).unref();
});
