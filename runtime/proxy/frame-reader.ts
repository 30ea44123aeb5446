// Reassembly on the host side (ABI.md: the host owns unconsumed bytes). Holds the tail of the
// last read and, when the codec said how long the next frame is, waits until that many bytes are
// buffered before calling the codec again, so a 1 MB value arriving in 64 KB reads is copied into
// the plugin once, not sixteen times.

import { Status } from '../plugin/abi';
import type { DecodeResult } from '../plugin/codec-instance';
import type { CodecContext } from '../plugin/codec-plugin';

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = 0;

  constructor(private readonly ctx: CodecContext, private readonly flags: number, private readonly maxFrameSize: number) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Decodes what `chunk` completes; null while still waiting for a known frame length. */
  push(chunk: Buffer): DecodeResult | null {
    let input: Buffer;
    if (this.buffered === 0) {
      input = chunk;
    } else {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered < this.need) return null;
      input = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    }
    const result = this.ctx.decode(input, this.flags);
    const frames = result.frames;
    for (let i = 0; i < frames.length; i++) {
      if (frames[i].frame.length > this.maxFrameSize) return this.tooLarge(result, i, frames[i].frame.length);
    }
    const rest = input.length - result.consumed;
    if (rest === 0 || result.status < 0) {
      this.chunks = [];
      this.buffered = 0;
      this.need = 0;
      return result;
    }
    this.chunks = [input.subarray(result.consumed)];
    this.buffered = rest;
    this.need = result.need > result.consumed ? result.need - result.consumed : 0;
    if (rest > this.maxFrameSize || this.need > this.maxFrameSize) {
      return this.tooLarge(result, result.frames.length, Math.max(rest, this.need));
    }
    return result;
  }

  /** Keeps the frames before `index` and turns the result into a FRAME_TOO_LARGE error. */
  private tooLarge(result: DecodeResult, index: number, size: number): DecodeResult {
    result.frames = result.frames.slice(0, index);
    result.status = Status.FRAME_TOO_LARGE;
    result.error = `frame of ${size} bytes exceeds max_frame_size ${this.maxFrameSize}`;
    this.chunks = [];
    this.buffered = 0;
    this.need = 0;
    return result;
  }
}
