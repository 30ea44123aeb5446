// MySQL packets: a 3-byte little-endian payload length, a sequence number, the payload. A payload
// of exactly 0xFFFFFF bytes continues in the next packet (a "logical" packet spans them all).
// Every read here is bounds-checked against the input: the bytes are the client's or the server's.

import { Bytes, Output } from "../../sdk/assembly";

export const MAX_PAYLOAD: i32 = 0xffffff;
/** Total length the incomplete packet at the end needs, set when packetEnd returns 0. */
export let needEnd: i32 = 0;
/** Bytes of the last lenenc integer read. */
export let lenencSize: i32 = 0;

@inline export function payloadLength(b: Bytes, at: i32): i32 {
  return <i32>b.at(at) | (<i32>b.at(at + 1) << 8) | (<i32>b.at(at + 2) << 16);
}

@inline export function seqOf(b: Bytes, at: i32): u8 {
  return b.at(at + 3);
}

/** End of the logical packet at `at` (continuations included); 0 when it is not all there. */
export function packetEnd(b: Bytes, at: i32): i32 {
  let p = at;
  while (true) {
    if (p + 4 > b.length) { needEnd = p + 4; return 0; }
    const len = payloadLength(b, p);
    const end = p + 4 + len;
    if (end > b.length) { needEnd = end; return 0; }
    if (len < MAX_PAYLOAD) return end;
    p = end;
  }
}

/** u16 little-endian at `at`, or -1 when past `limit`. */
export function u16At(b: Bytes, at: i32, limit: i32): i32 {
  return at + 2 > limit ? -1 : <i32>b.at(at) | (<i32>b.at(at + 1) << 8);
}

export function u32At(b: Bytes, at: i32): u32 {
  return <u32>b.at(at) | (<u32>b.at(at + 1) << 8) | (<u32>b.at(at + 2) << 16) | (<u32>b.at(at + 3) << 24);
}

/** A length-encoded integer at `at` (size in `lenencSize`); -1 when truncated or not one. */
export function lenenc(b: Bytes, at: i32, limit: i32): i64 {
  if (at >= limit) return -1;
  const f = b.at(at);
  if (f < 0xfb) { lenencSize = 1; return <i64>f; }
  if (f == 0xfc) {
    if (at + 3 > limit) return -1;
    lenencSize = 3;
    return <i64>(<i32>b.at(at + 1) | (<i32>b.at(at + 2) << 8));
  }
  if (f == 0xfd) {
    if (at + 4 > limit) return -1;
    lenencSize = 4;
    return <i64>(<i32>b.at(at + 1) | (<i32>b.at(at + 2) << 8) | (<i32>b.at(at + 3) << 16));
  }
  if (f == 0xfe) {
    if (at + 9 > limit) return -1;
    lenencSize = 9;
    let v: i64 = 0;
    for (let i = 8; i >= 1; i--) v = (v << 8) | <i64>b.at(at + i);
    return v < 0 ? -1 : v;
  }
  return -1;
}

/** Index of the NUL ending the string at `at`, or -1 when there is none before `limit`. */
export function nulEnd(b: Bytes, at: i32, limit: i32): i32 {
  for (let i = at; i < limit; i++) if (b.at(i) == 0) return i;
  return -1;
}

/** Writes a packet header for `len` payload bytes with sequence `seq`. */
export function header(out: Output, len: i32, seq: u8): void {
  out.u8(<u8>len).u8(<u8>(len >> 8)).u8(<u8>(len >> 16)).u8(seq);
}

/** Writes a length-encoded integer. */
export function writeLenenc(out: Output, v: i32): void {
  if (v < 0xfb) { out.u8(<u8>v); return; }
  if (v < 0x10000) { out.u8(0xfc).u16le(<u16>v); return; }
  out.u8(0xfd).u8(<u8>v).u8(<u8>(v >> 8)).u8(<u8>(v >> 16));
}

/** Rewrites the sequence numbers of every packet in [0, end) by `delta` (mod 256), in place. */
export function shiftSequence(b: Bytes, end: i32, delta: i32): void {
  let p = 0;
  while (p + 4 <= end) {
    store<u8>(b.ptr + <usize>(p + 3), <u8>(<i32>b.at(p + 3) + delta));
    p += 4 + payloadLength(b, p);
  }
}
