// Reassembly on the host side (ABI.md: the host owns unconsumed bytes). Holds the tail of the
// last read and decides when the codec is called again:
// - the codec said how long the next frame is (`need`): not before that many bytes are buffered,
//   so a 1 MB value arriving in 64 KB reads is copied into the plugin once, not sixteen times;
// - it did not, and the partial frame is large (a Redis multibulk of a million small arguments
//   gives no total length): not before the buffer has doubled, or the sender has gone quiet.
//   Re-decoding from the start on every read would be quadratic (34 s for a 60 MB frame,
//   measured); doubling makes the total work linear. The quiet retry covers a frame that ends
//   between two doublings; its delay grows with the buffer, so a sender trickling bytes cannot
//   make the proxy re-decode megabytes every few milliseconds.

import { Status } from '../wasm/abi';
import type { DecodeResult } from '../codec/codec-instance';
import type { CodecContext } from '../codec/codec-plugin';

/** Unconsumed bytes above which, without a length from the codec, decoding waits for the buffer to double. */
export const GROWTH_THRESHOLD = 64 * 1024;
/** Quiet time before a partial large frame is decoded anyway: base plus 1 ms per 64 KiB buffered. */
const QUIET_BASE_MS = 2;

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = 0;
  /** What the codec said it needs at least (its `need` may be a lower bound, as Redis's is). */
  private hardNeed = 0;
  /** `need` is the host's doubling policy, not the codec's word: a quiet sender ends the wait. */
  private soft = false;
  private quiet: NodeJS.Timeout | undefined;

  /**
   * `retry` is called when a large partial frame has waited for quiet long enough; the owner
   * then calls `push(EMPTY, true)` and handles the result as if data had arrived.
   */
  constructor(private readonly ctx: CodecContext, private readonly flags: number, private readonly maxFrameSize: number,
    private readonly retry?: () => void) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Decodes what `chunk` completes; null while still waiting. `force` decodes what is buffered. */
  push(chunk: Buffer, force = false): DecodeResult | null {
    let input: Buffer;
    if (this.buffered === 0) {
      if (chunk.length === 0) return null;
      input = chunk;
    } else {
      if (chunk.length > 0) {
        this.chunks.push(chunk);
        this.buffered += chunk.length;
      }
      if (this.buffered < this.need && !(force && this.soft && this.buffered >= this.hardNeed)) {
        if (this.soft) this.armQuiet();
        return null;
      }
      input = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    }
    this.disarmQuiet();
    const result = this.ctx.decode(input, this.flags);
    const frames = result.frames;
    for (let i = 0; i < frames.length; i++) {
      if (frames[i].frame.length > this.maxFrameSize) return this.tooLarge(result, i, frames[i].frame.length);
    }
    const rest = input.length - result.consumed;
    if (rest === 0 || result.status < 0) {
      this.reset();
      return result;
    }
    this.chunks = [input.subarray(result.consumed)];
    this.buffered = rest;
    const hinted = result.need > result.consumed ? result.need - result.consumed : 0;
    if (rest > this.maxFrameSize || hinted > this.maxFrameSize) {
      return this.tooLarge(result, result.frames.length, Math.max(rest, hinted));
    }
    // A codec's hint can be a lower bound that creeps forward one element at a time: for a large
    // partial frame it only ever raises the doubling target, never lowers it.
    this.hardNeed = hinted;
    this.soft = rest >= GROWTH_THRESHOLD && hinted < rest * 2;
    this.need = this.soft ? Math.min(rest * 2, this.maxFrameSize + 1) : hinted;
    if (this.soft) this.armQuiet();
    return result;
  }

  /** Stops the quiet timer (the connection closed). */
  close(): void {
    this.disarmQuiet();
    this.chunks = [];
    this.buffered = 0;
  }

  private armQuiet(): void {
    if (!this.retry) return;
    const ms = QUIET_BASE_MS + this.buffered / GROWTH_THRESHOLD;
    // One timer per reader, re-armed on each read: only large partial frames ever have one.
    if (this.quiet) {
      this.quiet.refresh();
    } else {
      this.quiet = setTimeout(() => {
        this.quiet = undefined;
        this.retry!();
      }, ms);
      this.quiet.unref();
    }
  }

  private disarmQuiet(): void {
    if (this.quiet) {
      clearTimeout(this.quiet);
      this.quiet = undefined;
    }
  }

  private reset(): void {
    this.chunks = [];
    this.buffered = 0;
    this.need = 0;
    this.hardNeed = 0;
    this.soft = false;
  }

  /** Keeps the frames before `index` and turns the result into a FRAME_TOO_LARGE error. */
  private tooLarge(result: DecodeResult, index: number, size: number): DecodeResult {
    result.frames = result.frames.slice(0, index);
    result.status = Status.FRAME_TOO_LARGE;
    result.error = `frame of ${size} bytes exceeds max_frame_size ${this.maxFrameSize}`;
    this.reset();
    return result;
  }
}
