// The ABI plumbing every plugin kind shares (ABI.md §3): the control block, IN (grown on
// request) and OUT, and how a call publishes its output or its error. Codec exports (exports.ts)
// and filter exports (filter-exports.ts) are built on it.

import { Output } from "./bytes";
import { CTRL_SIZE } from "./abi";

export const CTRL: usize = memory.data(CTRL_SIZE, 16);
export const C_IN_PTR = 0, C_IN_CAP = 4, C_OUT_PTR = 8, C_OUT_LEN = 12, C_CONSUMED = 16;
export const C_FRAME_COUNT = 20, C_NEED = 24, C_ERR_OFF = 28, C_ERR_LEN = 32;
/** ABI 1.2: written by the host; beginCall leaves them alone. */
export const C_EXPECT = 36, C_SESSION = 40;

let inBuf = new ArrayBuffer(64 * 1024);
export const out = new Output(64 * 1024);

function publishIn(): void {
  store<u32>(CTRL + C_IN_PTR, <u32>changetype<usize>(inBuf));
  store<u32>(CTRL + C_IN_CAP, <u32>inBuf.byteLength);
}
publishIn();

@inline export function inPtr(): usize { return changetype<usize>(inBuf); }
@inline export function inCap(): i32 { return inBuf.byteLength; }

export function finishCall(status: i32): i32 {
  store<u32>(CTRL + C_OUT_PTR, <u32>out.ptr);
  store<u32>(CTRL + C_OUT_LEN, <u32>out.length);
  return status;
}

export function beginCall(): void {
  out.clear();
  store<u32>(CTRL + C_CONSUMED, 0);
  store<u32>(CTRL + C_FRAME_COUNT, 0);
  store<u32>(CTRL + C_NEED, 0);
  store<u32>(CTRL + C_ERR_OFF, 0);
  store<u32>(CTRL + C_ERR_LEN, 0);
}

export function fail(status: i32, message: string): i32 {
  const off = out.length;
  out.string(message);
  store<u32>(CTRL + C_ERR_OFF, <u32>off);
  store<u32>(CTRL + C_ERR_LEN, <u32>(out.length - off));
  return finishCall(status);
}

@inline export function align8(n: i32): i32 { return (n + 7) & ~7; }

export function jsonString(o: Output, s: string): void {
  o.u8(34);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 34 || c == 92) o.u8(92);
    if (c < 32) o.u8(32); else o.string(String.fromCharCode(c));
  }
  o.u8(34);
}

export function meltemi_abi_v1(): void {}

export function meltemi_ctrl(): usize { return CTRL; }

export function meltemi_in_reserve(minCap: i32): usize {
  if (minCap > inBuf.byteLength) {
    let cap = inBuf.byteLength;
    while (cap < minCap) cap <<= 1;
    inBuf = new ArrayBuffer(cap);
    publishIn();
  }
  return inPtr();
}
