// Decode-side Metadata: the codec describes one frame through a `Frame`, which writes a metadata
// record (ABI.md §6.1) straight into the output batch. Values are normally references into the
// input, so nothing is copied and the host slices its own buffer.

import { Bytes, Output } from "./bytes";
import { ENTRY_SIZE, MSG_REQUEST, RECORD_HEADER_SIZE, RESPONSE_OK } from "./abi";

const INLINE_KEY: u32 = 1;
const INLINE_VALUE: u32 = 2;

export class Frame {
  /** Message type (`MSG_*`). Preset to request (downstream) or response (upstream). */
  messageType: u8 = MSG_REQUEST;
  /** Response status: `RESPONSE_OK` or `RESPONSE_ERROR`. */
  status: u8 = RESPONSE_OK;
  /** `FRAME_*` flags. */
  flags: u16 = 0;
  requestId: u64 = 0;
  streamId: u64 = 0;
  /**
   * ABI 1.2, bound sessions: a word about the response this request expects (MySQL: which
   * command it answers). The host hands it back, through `Session.expected()`, when it decodes
   * that response.
   */
  expect: u32 = 0;
  /** When decode returns 0: the total length of this frame, if the codec already knows it. */
  needBytes: i32 = 0;
  /** When decode returns < 0: why. */
  errorMessage: string = "";

  private out: Output;
  private scratch: Output = new Output(256);
  private recordStart: i32 = 0;
  private base: i32 = 0;
  private entries: i32 = 0;

  constructor(out: Output) { this.out = out; }

  /** @internal Starts a record for a frame at offset `base` of IN. */
  begin(base: i32, messageType: u8): void {
    this.base = base;
    this.recordStart = this.out.length;
    this.entries = 0;
    this.messageType = messageType;
    this.status = RESPONSE_OK;
    this.flags = 0;
    this.requestId = 0;
    this.streamId = 0;
    this.expect = 0;
    this.needBytes = 0;
    this.scratch.clear();
    this.out.reserve(RECORD_HEADER_SIZE);
    this.out.length += RECORD_HEADER_SIZE;
  }

  /** @internal Drops a record that was begun but whose frame is incomplete or invalid. */
  abandon(): void { this.out.length = this.recordStart; }

  /** @internal Completes the record for a frame of `frameLen` bytes. */
  finish(frameLen: i32): void {
    const out = this.out;
    const start = this.recordStart;
    // Inline data follows the entries; its offsets become relative to the record start.
    const inlineBase = <u32>(out.length - start);
    if (this.scratch.length > 0) {
      for (let i = 0; i < this.entries; i++) {
        const e = start + RECORD_HEADER_SIZE + i * ENTRY_SIZE;
        const flags = out.getU32le(e) >>> 16;
        if (flags & INLINE_KEY) out.setU32le(e + 4, out.getU32le(e + 4) + inlineBase);
        if (flags & INLINE_VALUE) out.setU32le(e + 12, out.getU32le(e + 12) + inlineBase);
      }
      out.copy(this.scratch.ptr, this.scratch.length);
    }
    out.pad(8);
    out.setU32le(start, <u32>(out.length - start));
    out.setU32le(start + 4, <u32>this.base);
    out.setU32le(start + 8, <u32>frameLen);
    out.setU8(start + 12, this.messageType);
    out.setU8(start + 13, this.status);
    out.setU16le(start + 14, this.flags);
    out.setU32le(start + 16, <u32>this.requestId);
    out.setU32le(start + 20, <u32>(this.requestId >>> 32));
    out.setU32le(start + 24, <u32>this.streamId);
    out.setU32le(start + 28, <u32>(this.streamId >>> 32));
    out.setU32le(start + 32, <u32>this.entries);
    out.setU32le(start + 36, this.expect);
  }

  private entry(keyId: u16, flags: u32, keyOff: u32, keyLen: u32, valOff: u32, valLen: u32): void {
    const p = this.out.reserve(ENTRY_SIZE);
    store<u32>(p, <u32>keyId | (flags << 16));
    store<u32>(p, keyOff, 4);
    store<u32>(p, keyLen, 8);
    store<u32>(p, valOff, 12);
    store<u32>(p, valLen, 16);
    this.out.length += ENTRY_SIZE;
    this.entries++;
  }

  /** Well-known key `keyId`; the value is bytes [at, at+len) of the frame being decoded. */
  putRef(keyId: u16, at: i32, len: i32): void {
    this.entry(keyId, 0, 0, 0, <u32>(this.base + at), <u32>len);
  }

  /** Key and value both taken from the frame. */
  putRefRef(keyAt: i32, keyLen: i32, valAt: i32, valLen: i32): void {
    this.entry(0, 0, <u32>(this.base + keyAt), <u32>keyLen, <u32>(this.base + valAt), <u32>valLen);
  }

  /** Named key (copied); value taken from the frame. */
  putNamedRef(key: string, valAt: i32, valLen: i32): void {
    const keyOff = <u32>this.scratch.length;
    this.scratch.string(key);
    const keyLen = <u32>this.scratch.length - keyOff;
    this.entry(0, INLINE_KEY, keyOff, keyLen, <u32>(this.base + valAt), <u32>valLen);
  }

  /** Well-known key; the value is bytes [at, at+len) of the frame, ASCII upper-cased (copied). */
  putRefUppercase(keyId: u16, input: Bytes, at: i32, len: i32): void {
    const off = this.copyUppercase(input, at, len);
    this.entry(keyId, INLINE_VALUE, 0, 0, off, <u32>len);
  }

  /** Copies bytes [at, at+len) of `input` to the inline data, ASCII upper-cased; returns their offset. */
  private copyUppercase(input: Bytes, at: i32, len: i32): u32 {
    const off = this.scratch.length;
    const dst = this.scratch.reserve(len);
    const src = input.ptr + <usize>at;
    for (let i = 0; i < len; i++) {
      let c = <u32>load<u8>(src + <usize>i);
      if (c - 97 < 26) c -= 32;
      store<u8>(dst + <usize>i, <u8>c);
    }
    this.scratch.length += len;
    return <u32>off;
  }

  /** Named key (copied); the value is bytes [at, at+len) of the frame, ASCII upper-cased (copied). */
  putNamedRefUppercase(key: string, input: Bytes, at: i32, len: i32): void {
    const keyOff = <u32>this.scratch.length;
    this.scratch.string(key);
    const keyLen = <u32>this.scratch.length - keyOff;
    const off = this.copyUppercase(input, at, len);
    this.entry(0, INLINE_KEY | INLINE_VALUE, keyOff, keyLen, off, <u32>len);
  }

  /** Well-known key with a value the codec computed (copied). */
  putString(keyId: u16, value: string): void {
    const off = <u32>this.scratch.length;
    this.scratch.string(value);
    this.entry(keyId, INLINE_VALUE, 0, 0, off, <u32>this.scratch.length - off);
  }

  /** Named key and computed value (both copied). */
  putNamed(key: string, value: string): void {
    const keyOff = <u32>this.scratch.length;
    this.scratch.string(key);
    const keyLen = <u32>this.scratch.length - keyOff;
    const valOff = <u32>this.scratch.length;
    this.scratch.string(value);
    this.entry(0, INLINE_KEY | INLINE_VALUE, keyOff, keyLen, valOff, <u32>this.scratch.length - valOff);
  }

  /** Marks the frame invalid; decode then returns a negative status. */
  fail(message: string): void { this.errorMessage = message; }
}
