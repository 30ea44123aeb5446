// Large frames are reassembled in linear time for every codec: a legal 58 MB Redis multibulk
// of a million arguments gives the codec no total length, and re-decoding it from the start on
// every read was quadratic (34 s through the proxy against 0.1 s direct). The host now waits for
// the buffer to double, or for the sender to go quiet.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { ConsoleLogger } from '../../runtime/core/logger';
import { CodecPlugin } from '../../runtime/codec/codec-plugin';
import { compilePlugin } from '../../runtime/plugin/plugin-loader';
import { FrameReader } from '../../runtime/proxy/frame-reader';
import { REDIS_WASM } from '../helpers/paths';
import { AttackBench } from './attack-harness';

/** EXISTS with `n` keys of 48 bytes each: one RESP multibulk of about 58 MB for a million. */
function hugeExists(n: number): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${n + 1}\r\n$6\r\nEXISTS\r\n`)];
  const block: string[] = [];
  for (let i = 0; i < n; i++) {
    block.push(`$48\r\nkey:${String(i).padStart(44, '0')}\r\n`);
    if (block.length === 10_000) parts.push(Buffer.from(block.splice(0).join('')));
  }
  parts.push(Buffer.from(block.join('')));
  return Buffer.concat(parts);
}

/** Sends `frame` on a fresh connection to `port` and resolves with the reply and the time taken. */
function roundTrip(port: number, frame: Buffer): Promise<{ reply: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sock = net.connect(port, '127.0.0.1', () => sock.end(frame));
    let reply = '';
    sock.on('data', (d) => { reply += d.toString('latin1'); });
    sock.on('error', reject);
    sock.on('close', () => resolve({ reply, ms: performance.now() - t0 }));
  });
}

describe('containment: reassembly of large frames is linear', function () {
  this.timeout(120_000);

  it('a frame with no length hint, fed in 64 KB reads, is decoded from at most ~4x its size in total', () => {
    const logger = new ConsoleLogger('silent');
    const plugin = new CodecPlugin(compilePlugin(REDIS_WASM, readFileSync(REDIS_WASM), logger), logger);
    const ctx = plugin.open(false, Buffer.alloc(0));
    let decodedBytes = 0;
    let calls = 0;
    const decode = ctx.decode.bind(ctx);
    ctx.decode = (input, flags) => { decodedBytes += input.length; calls++; return decode(input, flags); };
    const frame = hugeExists(100_000); // 5.8 MB
    const reader = new FrameReader(ctx, 0, 64 * 1024 * 1024);
    let frames = 0;
    for (let at = 0; at < frame.length; at += 65536) frames += reader.push(frame.subarray(at, at + 65536))?.frames.length ?? 0;
    frames += reader.push(Buffer.alloc(0), true)?.frames.length ?? 0; // the quiet retry, if the end fell between doublings
    ctx.close();
    assert.equal(frames, 1);
    assert.ok(decodedBytes <= 4 * frame.length, `decoded ${decodedBytes} bytes in ${calls} calls for a ${frame.length}-byte frame`);
    assert.ok(calls < 20, `${calls} decode calls`);
  });

  describe('through a live proxy', () => {
    let bench: AttackBench;
    before(async () => {
      bench = await AttackBench.start({
        portNames: ['big'],
        listeners: (p) => `  - { name: big, port: ${p.big}, protocol: redis, route_config: { routes: [ { route: { cluster: target } } ] } }`,
      });
    });
    after(async () => {
      await bench?.kill();
    });

    it('a 58 MB multibulk of a million arguments passes in about direct time; a healthy client keeps its p99', async () => {
      const frame = hugeExists(1_000_000);
      const direct = await roundTrip(bench.target.port, frame);
      assert.equal(direct.reply, ':0\r\n');
      let proxied = { reply: '', ms: 0 };
      // The one bound this attack does not meet: the frame is copied and parsed once, on the
      // proxy's one thread, in a single call (100-300 ms here); before, it was 10 s at a time.
      // A healthy client sees that one stall; it must not see more (p99 within the stall).
      await bench.underAttack(async () => {
        proxied = await roundTrip(bench.ports.big, frame);
      }, { p99Ms: 1000, rssBound: 900 * 1024 * 1024 });
      assert.equal(proxied.reply, ':0\r\n');
      process.stdout.write(`      58 MB multibulk: direct ${direct.ms.toFixed(0)} ms, through meltemi ${proxied.ms.toFixed(0)} ms\n`);
      assert.ok(proxied.ms < Math.max(10 * direct.ms, 3000), `proxied ${proxied.ms.toFixed(0)} ms vs direct ${direct.ms.toFixed(0)} ms`);
    });
  });
});
