// A Hessian 2 walker: skips any value without building it (Dubbo puts the attachments after the
// call arguments, which may be arbitrary Java objects), and reads the few strings and ints the
// codec needs. Nested values are walked with an explicit stack, never recursion.

import { Bytes } from "../../sdk/assembly";

export const NEED: i32 = 0;
export const BAD: i32 = -1;
export let hessianError: string = "";

const MAX_DEPTH = 256;
const MAX_CLASSES = 1024;
/** Values still owed per open container; -1: until 'Z'. */
const owed = new StaticArray<i64>(MAX_DEPTH + 1);
let depth = 0;
/** Field counts of the class definitions seen in the current message. */
const classFields = new StaticArray<i32>(MAX_CLASSES);
let classCount = 0;

/** Call once per message: class definitions are scoped to one message. */
export function resetClasses(): void { classCount = 0; }

function bad(message: string): i32 { hessianError = message; return BAD; }

/** Skips `chars` UTF-16 units of UTF-8 (Hessian string lengths count UTF-16 units). */
function skipChars(b: Bytes, pos: i32, chars: i32): i32 {
  let left = chars;
  while (left > 0) {
    if (pos >= b.length) return NEED;
    const c = b.at(pos);
    if (c < 0x80) { pos += 1; left -= 1; }
    else if (c < 0xe0) { pos += 2; left -= 1; }
    else if (c < 0xf0) { pos += 3; left -= 1; }
    else { pos += 4; left -= 2; }
  }
  return pos > b.length ? NEED : pos;
}

// ---- ints and strings ---------------------------------------------------------------------

/** Set by readInt. */
export let intValue: i32 = 0;

/** Reads a Hessian int at `pos`; returns the offset after it, NEED, or BAD. */
export function readInt(b: Bytes, pos: i32): i32 {
  if (pos >= b.length) return NEED;
  const c = <i32>b.at(pos);
  if (c >= 0x80 && c <= 0xbf) { intValue = c - 0x90; return pos + 1; }
  if (c >= 0xc0 && c <= 0xcf) {
    if (pos + 2 > b.length) return NEED;
    intValue = ((c - 0xc8) << 8) + <i32>b.at(pos + 1);
    return pos + 2;
  }
  if (c >= 0xd0 && c <= 0xd7) {
    if (pos + 3 > b.length) return NEED;
    intValue = ((c - 0xd4) << 16) + (<i32>b.at(pos + 1) << 8) + <i32>b.at(pos + 2);
    return pos + 3;
  }
  if (c == 0x49) {
    if (pos + 5 > b.length) return NEED;
    intValue = b.i32be(pos + 1);
    return pos + 5;
  }
  return bad("expected an int, found 0x" + c.toString(16));
}

/** Set by readString: where the UTF-8 bytes are when the string is one chunk. */
export let strAt: i32 = 0;
export let strLen: i32 = 0;
/** Set by readString: the string is chunked or null (then strAt/strLen are meaningless). */
export let strChunked: bool = false;
export let strNull: bool = false;

/** Reads one string chunk ('R' non-final, or a final form) at `pos`; sets strAt/strLen. */
function readChunk(b: Bytes, pos: i32, c: i32): i32 {
  let chars: i32;
  let at: i32;
  if (c <= 0x1f) { chars = c; at = pos + 1; }
  else if (c >= 0x30 && c <= 0x33) {
    if (pos + 2 > b.length) return NEED;
    chars = ((c - 0x30) << 8) + <i32>b.at(pos + 1);
    at = pos + 2;
  } else if (c == 0x53 || c == 0x52) {
    if (pos + 3 > b.length) return NEED;
    chars = <i32>b.u16be(pos + 1);
    at = pos + 3;
  } else {
    return bad("expected a string, found 0x" + c.toString(16));
  }
  const end = skipChars(b, at, chars);
  if (end <= 0) return end;
  strAt = at;
  strLen = end - at;
  return end;
}

/**
 * Reads a string (or null) at `pos`; returns the offset after it, NEED, or BAD. A one-chunk
 * string's UTF-8 bytes are [strAt, strAt+strLen); a chunked one sets strChunked.
 */
export function readString(b: Bytes, pos: i32): i32 {
  if (pos >= b.length) return NEED;
  let c = <i32>b.at(pos);
  strChunked = false;
  strNull = false;
  if (c == 0x4e /* N */) { strNull = true; return pos + 1; }
  let p = pos;
  while (c == 0x52) { // 'R': non-final chunks, then a final one
    strChunked = true;
    p = readChunk(b, p, c);
    if (p <= 0) return p;
    if (p >= b.length) return NEED;
    c = <i32>b.at(p);
  }
  return readChunk(b, p, c);
}

/** Skips a type name (string) or a type reference (int) of a typed list or map. */
function skipType(b: Bytes, pos: i32): i32 {
  if (pos >= b.length) return NEED;
  const c = <i32>b.at(pos);
  if (c <= 0x1f || (c >= 0x30 && c <= 0x33) || c == 0x52 || c == 0x53) return readString(b, pos);
  return readInt(b, pos);
}

function push(n: i64): bool {
  if (depth >= MAX_DEPTH) return false;
  depth++;
  unchecked(owed[depth] = n);
  return true;
}

// ---- skipping -----------------------------------------------------------------------------

/** Skips one complete value at `pos`; returns the offset after it, NEED, or BAD. */
export function skipValue(b: Bytes, pos: i32): i32 {
  depth = 0;
  push(1);
  while (depth > 0) {
    const top = unchecked(owed[depth]);
    if (top == 0) { depth--; continue; }
    if (pos >= b.length) return NEED;
    const c = <i32>b.at(pos);
    if (top < 0 && c == 0x5a /* Z */) { pos++; depth--; continue; }
    if (top > 0) unchecked(owed[depth] = top - 1);
    const next = skipOne(b, pos, c);
    if (next <= 0) return next;
    pos = next;
  }
  return pos;
}

/** Skips the value (or value header, pushing its contents) starting with byte `c` at `pos`. */
function skipOne(b: Bytes, pos: i32, c: i32): i32 {
  if (c <= 0x1f || (c >= 0x30 && c <= 0x33) || c == 0x53) return readString(b, pos);
  if (c == 0x52) return readString(b, pos); // chunked string: all its chunks are one value
  if (c >= 0x20 && c <= 0x2f) return fixed(b, pos, 1 + c - 0x20);
  if (c >= 0x34 && c <= 0x37) {
    if (pos + 2 > b.length) return NEED;
    return fixed(b, pos, 2 + ((c - 0x34) << 8) + <i32>b.at(pos + 1));
  }
  if (c == 0x41 || c == 0x42) { // binary chunks; 'A' is followed by more chunks of the same value
    let p = pos;
    while (true) {
      if (p + 3 > b.length) return NEED;
      const tag = <i32>b.at(p);
      if (tag >= 0x20 && tag <= 0x2f) return fixed(b, p, 1 + tag - 0x20); // compact final chunk
      if (tag >= 0x34 && tag <= 0x37) return fixed(b, p, 2 + ((tag - 0x34) << 8) + <i32>b.at(p + 1));
      if (tag != 0x41 && tag != 0x42) return bad("bad binary chunk");
      const n = fixed(b, p, 3 + <i32>b.u16be(p + 1));
      if (n <= 0) return n;
      p = n;
      if (tag == 0x42) return p;
    }
  }
  if (c >= 0x38 && c <= 0x3f) return fixed(b, pos, 3);
  if (c >= 0x80 && c <= 0xbf) return pos + 1;
  if (c >= 0xc0 && c <= 0xcf) return fixed(b, pos, 2);
  if (c >= 0xd0 && c <= 0xd7) return fixed(b, pos, 3);
  if (c >= 0xd8 && c <= 0xef) return pos + 1;
  if (c >= 0xf0) return fixed(b, pos, 2);
  if (c >= 0x60 && c <= 0x6f) return object(pos + 1, c - 0x60);
  if (c >= 0x70 && c <= 0x77) {
    const r = skipType(b, pos + 1);
    if (r <= 0) return r;
    return push(c - 0x70) ? r : bad("nesting too deep");
  }
  if (c >= 0x78 && c <= 0x7f) return push(c - 0x78) ? pos + 1 : bad("nesting too deep");
  switch (c) {
    case 0x4e: case 0x54: case 0x46: case 0x5b: case 0x5c: return pos + 1; // N T F 0.0 1.0
    case 0x5d: return fixed(b, pos, 2);
    case 0x5e: return fixed(b, pos, 3);
    case 0x49: case 0x59: case 0x4b: case 0x5f: return fixed(b, pos, 5); // I, Y, minutes date, float
    case 0x44: case 0x4a: case 0x4c: return fixed(b, pos, 9); // D, J, L
    case 0x51: return readInt(b, pos + 1); // Q ref
    case 0x48: case 0x57: return push(-1) ? pos + 1 : bad("nesting too deep"); // H, W
    case 0x4d: case 0x55: { // M, U: typed, until Z
      const r = skipType(b, pos + 1);
      if (r <= 0) return r;
      return push(-1) ? r : bad("nesting too deep");
    }
    case 0x56: { // V: typed list with length
      let r = skipType(b, pos + 1);
      if (r <= 0) return r;
      r = readInt(b, r);
      if (r <= 0) return r;
      if (intValue < 0) return bad("negative list length");
      return push(intValue) ? r : bad("nesting too deep");
    }
    case 0x58: { // X: untyped list with length
      const r = readInt(b, pos + 1);
      if (r <= 0) return r;
      if (intValue < 0) return bad("negative list length");
      return push(intValue) ? r : bad("nesting too deep");
    }
    case 0x43: { // C: a class definition, then the value that uses it
      let r = readString(b, pos + 1);
      if (r <= 0) return r;
      r = readInt(b, r);
      if (r <= 0) return r;
      const fields = intValue;
      if (fields < 0 || classCount >= MAX_CLASSES) return bad("bad class definition");
      for (let i = 0; i < fields; i++) {
        r = readString(b, r);
        if (r <= 0) return r;
      }
      unchecked(classFields[classCount++] = fields);
      // The definition is not a value: the value it precedes is still owed.
      unchecked(owed[depth] = unchecked(owed[depth]) + (unchecked(owed[depth]) >= 0 ? 1 : 0));
      return r;
    }
    case 0x4f: { // O: object with a class reference
      const r = readInt(b, pos + 1);
      if (r <= 0) return r;
      return object(r, intValue);
    }
  }
  return bad("unexpected byte 0x" + c.toString(16));
}

function object(pos: i32, ref: i32): i32 {
  if (ref < 0 || ref >= classCount) return bad("object refers to undefined class " + ref.toString());
  return push(unchecked(classFields[ref])) ? pos : bad("nesting too deep");
}

@inline function fixed(b: Bytes, pos: i32, n: i32): i32 {
  return pos + n > b.length ? NEED : pos + n;
}

// ---- writing ------------------------------------------------------------------------------

/** UTF-16 units in the UTF-8 bytes [at, at+len). */
export function utf16Length(b: Bytes, at: i32, len: i32): i32 {
  let n = 0;
  for (let i = at, end = at + len; i < end; i++) {
    const c = b.at(i);
    if ((c & 0xc0) != 0x80) n += c >= 0xf0 ? 2 : 1;
  }
  return n;
}
