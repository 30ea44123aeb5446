// The TARS encoding (TarsInputStream/TarsOutputStream in every TARS framework): a struct is a run
// of fields, each a head byte (tag in the high nibble, type in the low; tag 15 means the tag is
// the next byte) and a value whose size its type gives. Only what the envelope needs is read;
// everything else is skipped by type, with every length checked against the packet's end.

import { Bytes, Output } from "../../sdk/assembly";

export const T_INT1: u8 = 0;
export const T_INT2: u8 = 1;
export const T_INT4: u8 = 2;
export const T_INT8: u8 = 3;
export const T_FLOAT: u8 = 4;
export const T_DOUBLE: u8 = 5;
export const T_STRING1: u8 = 6;
export const T_STRING4: u8 = 7;
export const T_MAP: u8 = 8;
export const T_LIST: u8 = 9;
export const T_STRUCT_BEGIN: u8 = 10;
export const T_STRUCT_END: u8 = 11;
export const T_ZERO: u8 = 12;
export const T_SIMPLE_LIST: u8 = 13;

/** Nesting deeper than this is refused: no real envelope nests more than a few levels. */
const MAX_DEPTH = 32;

/** The last head read: its tag and type. */
export let headTag: i32 = 0;
export let headType: u8 = 0;
/** The last integer read. */
export let intValue: i64 = 0;
/** The last string read: where its bytes are and how many. */
export let strAt: i32 = 0;
export let strLen: i32 = 0;
/** Why the last read returned -1. */
export let streamError: string = "";

function bad(why: string): i32 {
  streamError = why;
  return -1;
}

/** Reads the head at `at`; returns where its value starts, or -1. */
export function readHead(b: Bytes, at: i32, end: i32): i32 {
  if (at >= end) return bad("truncated field head");
  const h = b.at(at);
  headType = h & 0x0f;
  headTag = h >> 4;
  if (headTag == 15) {
    if (at + 1 >= end) return bad("truncated field head");
    headTag = b.at(at + 1);
    return at + 2;
  }
  return at + 1;
}

/** Reads an integer value of type `type` at `at` (any width, as readers accept); returns its end or -1. */
export function readIntValue(b: Bytes, at: i32, end: i32, type: u8): i32 {
  if (type == T_ZERO) { intValue = 0; return at; }
  if (type == T_INT1) { if (at + 1 > end) return bad("truncated integer"); intValue = <i64><i8>b.at(at); return at + 1; }
  if (type == T_INT2) { if (at + 2 > end) return bad("truncated integer"); intValue = <i64>b.i16be(at); return at + 2; }
  if (type == T_INT4) { if (at + 4 > end) return bad("truncated integer"); intValue = <i64>b.i32be(at); return at + 4; }
  if (type == T_INT8) { if (at + 8 > end) return bad("truncated integer"); intValue = b.i64be(at); return at + 8; }
  return bad("an integer field has type " + type.toString());
}

/** Reads a head and an integer with tag `tag` (a map or list size); returns its end or -1. */
export function readTaggedInt(b: Bytes, at: i32, end: i32, tag: i32): i32 {
  const v = readHead(b, at, end);
  if (v < 0) return -1;
  if (headTag != tag) return bad("expected tag " + tag.toString() + ", found " + headTag.toString());
  return readIntValue(b, v, end, headType);
}

/** Reads a string value of type `type` at `at`; returns its end or -1. */
export function readStringValue(b: Bytes, at: i32, end: i32, type: u8): i32 {
  let len: i64 = 0;
  let p = at;
  if (type == T_STRING1) {
    if (p + 1 > end) return bad("truncated string");
    len = b.at(p); p += 1;
  } else if (type == T_STRING4) {
    if (p + 4 > end) return bad("truncated string");
    len = <i64>b.u32be(p); p += 4;
  } else {
    return bad("a string field has type " + type.toString());
  }
  if (len > <i64>(end - p)) return bad("string length past the packet's end");
  strAt = p;
  strLen = <i32>len;
  return p + <i32>len;
}

/** A size read as an int with tag 0: not negative and not more than the bytes left could hold. */
function readSize(b: Bytes, at: i32, end: i32): i32 {
  const p = readTaggedInt(b, at, end, 0);
  if (p < 0) return -1;
  if (intValue < 0 || intValue > <i64>(end - p)) return bad("size " + intValue.toString() + " past the packet's end");
  return p;
}

/** Skips the value of type `type` at `at`; returns its end or -1. */
export function skipValue(b: Bytes, at: i32, end: i32, type: u8, depth: i32): i32 {
  if (depth > MAX_DEPTH) return bad("nested deeper than " + MAX_DEPTH.toString());
  switch (type) {
    case T_INT1: case T_INT2: case T_INT4: case T_INT8: case T_ZERO:
      return readIntValue(b, at, end, type);
    case T_FLOAT: return at + 4 <= end ? at + 4 : bad("truncated float");
    case T_DOUBLE: return at + 8 <= end ? at + 8 : bad("truncated double");
    case T_STRING1: case T_STRING4:
      return readStringValue(b, at, end, type);
    case T_MAP: case T_LIST: {
      let p = readSize(b, at, end);
      if (p < 0) return -1;
      // A map's entries are a key and a value each; a list's, one element.
      const fields = <i64>intValue * (type == T_MAP ? 2 : 1);
      for (let i: i64 = 0; i < fields; i++) {
        p = skipField(b, p, end, depth + 1);
        if (p < 0) return -1;
      }
      return p;
    }
    case T_SIMPLE_LIST: {
      let p = readHead(b, at, end);
      if (p < 0) return -1;
      if (headType != T_INT1) return bad("a simple list of type " + headType.toString());
      p = readSize(b, p, end);
      if (p < 0) return -1;
      return p + <i32>intValue;
    }
    case T_STRUCT_BEGIN: {
      let p = at;
      while (true) {
        const v = readHead(b, p, end);
        if (v < 0) return -1;
        if (headType == T_STRUCT_END) return v;
        p = skipValue(b, v, end, headType, depth + 1);
        if (p < 0) return -1;
      }
    }
  }
  return bad("unknown field type " + type.toString());
}

/** Skips one whole field (head and value) at `at`; returns its end or -1. */
export function skipField(b: Bytes, at: i32, end: i32, depth: i32): i32 {
  const v = readHead(b, at, end);
  if (v < 0) return -1;
  return skipValue(b, v, end, headType, depth);
}

// ---- writing --------------------------------------------------------------------------------

export function writeHead(out: Output, tag: i32, type: u8): void {
  if (tag < 15) out.u8(<u8>((tag << 4) | type));
  else out.u8(<u8>(0xf0 | type)).u8(<u8>tag);
}

/** An integer in the fewest bytes, as every TARS writer does (readers accept any width). */
export function writeInt(out: Output, tag: i32, v: i64): void {
  if (v == 0) { writeHead(out, tag, T_ZERO); return; }
  if (v >= -128 && v <= 127) { writeHead(out, tag, T_INT1); out.u8(<u8>v); return; }
  if (v >= -32768 && v <= 32767) { writeHead(out, tag, T_INT2); out.u16be(<u16>v); return; }
  if (v >= -2147483648 && v <= 2147483647) { writeHead(out, tag, T_INT4); out.u32be(<u32>v); return; }
  writeHead(out, tag, T_INT8); out.u64be(<u64>v);
}

export function writeStringBytes(out: Output, tag: i32, b: Bytes, at: i32, len: i32): void {
  if (len <= 255) { writeHead(out, tag, T_STRING1); out.u8(<u8>len); }
  else { writeHead(out, tag, T_STRING4); out.u32be(<u32>len); }
  out.bytes(b, at, len);
}

const scratch = new Output(256);
const scratchView = new Bytes();

export function writeString(out: Output, tag: i32, s: string): void {
  scratch.clear();
  scratch.string(s);
  writeStringBytes(out, tag, scratchView.reset(scratch.ptr, scratch.length), 0, scratch.length);
}

/** An empty `vector<byte>` (a simple list of no bytes). */
export function writeEmptyBytes(out: Output, tag: i32): void {
  writeHead(out, tag, T_SIMPLE_LIST);
  writeHead(out, 0, T_INT1);
  writeInt(out, 0, 0);
}

export function writeEmptyMap(out: Output, tag: i32): void {
  writeHead(out, tag, T_MAP);
  writeInt(out, 0, 0);
}
