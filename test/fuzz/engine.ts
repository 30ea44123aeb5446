// The fuzzing engine: seeded (reproducible) mutation of valid frames, streamed through the
// host's real reassembly and ABI path (FrameReader -> CodecContext -> Wasm) in random chunks.
// Invariants: no trap, no ABI violation, no exception that is not a meltemi error. A protocol
// error ends the stream, as it would close the connection.

import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMeltemiError } from '../../runtime/core/errors';
import { CallFlag } from '../../runtime/wasm/abi';
import type { CodecContext, CodecPlugin } from '../../runtime/codec/codec-plugin';
import { SessionState } from '../../runtime/codec/codec-instance';
import { FrameReader } from '../../runtime/proxy/frame-reader';
import type { Corpus } from './corpus';

/** xorshift32: small, fast, and the same sequence for the same seed everywhere. */
const LARGE_EXPECTS = [0x8000_0001, 0xffff_ffff, 0xffff_fffd, 0xffff_fff9, 0x7fff_ffff];

export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0 || 1; }
  next(): number {
    let x = this.s;
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    this.s = x;
    return x;
  }
  below(n: number): number { return this.next() % n; }
  chance(p: number): boolean { return this.next() / 0x1_0000_0000 < p; }
}

const INTERESTING = [0x00, 0xff, 0x7f, 0x80, 0x0d, 0x0a, 0x2a, 0x24, 0x3a, 0x4e, 0x48, 0x5a, 0x43, 0x4f, 0x0b, 0x0c, 0x0f];

export function mutate(rng: Rng, frame: Buffer, corpus: Buffer[]): Buffer {
  let b = Buffer.from(frame);
  const rounds = 1 + rng.below(4);
  for (let r = 0; r < rounds && b.length > 0; r++) {
    const at = rng.below(b.length);
    switch (rng.below(9)) {
      case 0: b[at] ^= 1 << rng.below(8); break;
      case 1: b[at] = INTERESTING[rng.below(INTERESTING.length)]; break;
      case 2: b = b.subarray(0, at); break;
      case 3: { // a 4-byte length-like field set to something extreme
        const v = [0xffffffff, 0x7fffffff, 0x80000000, 0, 1, b.length * 3][rng.below(6)];
        if (at + 4 <= b.length) b.writeUInt32BE(v >>> 0, at);
        break;
      }
      case 4: b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + rng.below(16)), b.subarray(at)]); break;
      case 5: b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + rng.below(8) }, () => rng.below(256))), b.subarray(at)]); break;
      case 6: b = Buffer.concat([b.subarray(0, at), corpus[rng.below(corpus.length)].subarray(rng.below(8))]); break;
      case 7: b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.below(8))]); break;
      default: b = Buffer.from(Array.from({ length: 1 + rng.below(64) }, () => rng.below(256))); break;
    }
  }
  return b;
}

export interface FuzzStats {
  frames: number;
  decoded: number;
  protocolErrors: number;
  failures: Array<{ side: string; error: string; file: string | null }>;
}

export interface FuzzOptions {
  frames: number;
  seed: number;
  /** Where to save inputs that broke an invariant (null: do not save). */
  saveDir: string | null;
  mutateShare?: number;
  maxFrameSize?: number;
}

/** Runs `opts.frames` frames (half requests, half responses) through `plugin`. */
export function fuzzCodec(plugin: CodecPlugin, corpus: Corpus, opts: FuzzOptions): FuzzStats {
  const rng = new Rng(opts.seed);
  const stats: FuzzStats = { frames: 0, decoded: 0, protocolErrors: 0, failures: [] };
  const sides = [
    { name: 'request', upstream: false, frames: corpus.requests },
    { name: 'response', upstream: true, frames: corpus.responses },
  ];
  const ctxs = sides.map((s) => plugin.open(s.upstream, Buffer.alloc(0)));
  // ABI 1.2 bound sessions: both sides share the session words, which every batch starts from a
  // random state (phase, result-set position, counts) and `expect`: every state meets every input.
  // ABI 1.3 codecs that read `expect` on pooled connections get a random one on the response side.
  const session = plugin.descriptor.bindUpstream || plugin.descriptor.expectResponses ? new SessionState() : undefined;
  const bind = (c: CodecContext) => { c.session = session; return c; };
  if (plugin.descriptor.bindUpstream) ctxs.forEach(bind);
  else if (session) bind(ctxs[1]);
  try {
    while (stats.frames < opts.frames) {
      if (session) {
        session.words[0] = rng.below(8) | (rng.below(4) === 0 ? rng.below(256) << 8 : 0) | (rng.below(9) << 16) | (rng.below(2) << 24);
        session.words[1] = rng.below(2) === 0 ? 0 : 0xffff_ffff;
        session.words[2] = rng.below(2) === 0 ? 0 : 0xffff_ffff;
        session.words[3] = rng.below(6);
        session.words[4] = rng.below(4);
        // Small words (MySQL's and Memcached's kinds) and large ones (ZooKeeper's xid + 1: pings,
        // auth and setWatches replies, and 0x8000_0001 for the ConnectRequest).
        session.expect = rng.below(4) === 0 ? LARGE_EXPECTS[rng.below(LARGE_EXPECTS.length)] : rng.below(11);
      }
      const sideIndex = rng.below(2);
      const side = sides[sideIndex];
      const count = 1 + rng.below(8);
      const parts: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const seed = side.frames[rng.below(side.frames.length)];
        parts.push(rng.chance(opts.mutateShare ?? 0.7) ? mutate(rng, seed, side.frames) : seed);
      }
      stats.frames += count;
      const stream = Buffer.concat(parts);
      const reader = new FrameReader(ctxs[sideIndex], side.upstream ? CallFlag.SIDE_UPSTREAM : 0, opts.maxFrameSize ?? 1 << 20);
      let at = 0;
      try {
        while (at < stream.length) {
          const n = 1 + rng.below(Math.max(1, stream.length - at));
          const result = reader.push(stream.subarray(at, at + n));
          at += n;
          if (!result) continue;
          stats.decoded += result.frames.length;
          if (result.status < 0) {
            stats.protocolErrors++;
            break; // the proxy would close this connection
          }
        }
      } catch (err) {
        const message = isMeltemiError(err) ? `${err.code}: ${err.message}` : `non-meltemi error: ${(err as Error)?.stack ?? err}`;
        let file: string | null = null;
        if (opts.saveDir) {
          const dir = join(opts.saveDir, plugin.name);
          mkdirSync(dir, { recursive: true });
          file = join(dir, `${side.name}-${createHash('sha1').update(stream).digest('hex').slice(0, 16)}.bin`);
          writeFileSync(file, stream);
        }
        stats.failures.push({ side: side.name, error: message, file });
        ctxs[sideIndex] = bind(plugin.open(side.upstream, Buffer.alloc(0)));
      }
    }
  } finally {
    for (const c of ctxs) c.close();
  }
  return stats;
}
