// Finds where a Thrift struct ends without building it, for both the binary and the compact
// protocol. Unframed transports give no length, so the only way to find a message boundary is
// to walk its fields. Containers are walked with an explicit stack (no recursion) bounded by
// Thrift's own default depth limit.

import { Bytes } from "../../sdk/assembly";

export const NEED: i32 = 0;
export const BAD: i32 = -1;
export let skipError: string = "";

const MAX_DEPTH = 64;
// Binary protocol type ids.
export const T_STOP: u8 = 0, T_BOOL: u8 = 2, T_BYTE: u8 = 3, T_DOUBLE: u8 = 4, T_I16: u8 = 6, T_I32: u8 = 8;
export const T_I64: u8 = 10, T_STRING: u8 = 11, T_STRUCT: u8 = 12, T_MAP: u8 = 13, T_SET: u8 = 14, T_LIST: u8 = 15, T_UUID: u8 = 16;
// Compact protocol type ids.
const C_TRUE: u8 = 1, C_FALSE: u8 = 2, C_BYTE: u8 = 3, C_I16: u8 = 4, C_I32: u8 = 5, C_I64: u8 = 6, C_DOUBLE: u8 = 7;
const C_BINARY: u8 = 8, C_LIST: u8 = 9, C_SET: u8 = 10, C_MAP: u8 = 11, C_STRUCT: u8 = 12, C_UUID: u8 = 13;

// Stack of open containers: kind, values still to skip, element types.
const K_STRUCT: u8 = 0, K_LIST: u8 = 1, K_MAP: u8 = 2;
const kinds = new StaticArray<u8>(MAX_DEPTH + 1);
const remaining = new StaticArray<i64>(MAX_DEPTH + 1);
const typeA = new StaticArray<u8>(MAX_DEPTH + 1); // list element type, or map key type
const typeB = new StaticArray<u8>(MAX_DEPTH + 1); // map value type
let depth = 0;

/** Reads a base-128 varint at `pos`; sets `varintEnd`. Returns -1 past the end, -2 if too long. */
export let varintEnd: i32 = 0;
export function readVarint(b: Bytes, pos: i32): i64 {
  let v: u64 = 0;
  let shift: u64 = 0;
  for (let i = pos; i < b.length; i++) {
    const c = <u64>b.at(i);
    v |= (c & 0x7f) << shift;
    if ((c & 0x80) == 0) { varintEnd = i + 1; return <i64>v; }
    shift += 7;
    if (shift > 63) return -2;
  }
  return -1;
}

function bad(message: string): i32 { skipError = message; return BAD; }

function push(kind: u8, count: i64, a: u8, b: u8): bool {
  if (depth >= MAX_DEPTH) return false;
  depth++;
  unchecked(kinds[depth] = kind);
  unchecked(remaining[depth] = count);
  unchecked(typeA[depth] = a);
  unchecked(typeB[depth] = b);
  return true;
}

/**
 * Skips one struct starting at `pos` (just after the message header). Returns the offset after
 * it, NEED, or BAD (see `skipError`).
 */
export function skipStruct(b: Bytes, pos: i32, compact: bool): i32 {
  depth = 0;
  push(K_STRUCT, 0, 0, 0);
  // Compact field ids are deltas from the previous id of the same struct; only their presence
  // matters for skipping, so no per-level id is kept.
  while (depth > 0) {
    const kind = unchecked(kinds[depth]);
    let type: u8;
    if (kind == K_STRUCT) {
      if (pos >= b.length) return NEED;
      const h = b.at(pos);
      if (h == 0) { depth--; pos++; continue; }
      if (compact) {
        type = h & 0x0f;
        pos++;
        if ((h >> 4) == 0) { // long form: zigzag i16 field id follows
          const id = readVarint(b, pos);
          if (id == -1) return NEED;
          if (id == -2) return bad("bad field id");
          pos = varintEnd;
        }
        if (type == C_TRUE || type == C_FALSE) continue; // the value is the type
      } else {
        type = h;
        if (pos + 3 > b.length) return NEED;
        pos += 3;
      }
    } else {
      let left = unchecked(remaining[depth]);
      if (left == 0) { depth--; continue; }
      unchecked(remaining[depth] = left - 1);
      if (kind == K_LIST) type = unchecked(typeA[depth]);
      else type = (left & 1) == 0 ? unchecked(typeA[depth]) : unchecked(typeB[depth]); // map: key, value, key…
    }
    const next = compact ? skipCompactValue(b, pos, type) : skipBinaryValue(b, pos, type);
    if (next <= 0) return next;
    pos = next;
  }
  return pos;
}

/** Skips a scalar, or opens a container (pushing it) and returns the offset after its header. */
function skipBinaryValue(b: Bytes, pos: i32, type: u8): i32 {
  let size: i32 = 0;
  switch (type) {
    case T_BOOL: case T_BYTE: size = 1; break;
    case T_I16: size = 2; break;
    case T_I32: size = 4; break;
    case T_DOUBLE: case T_I64: size = 8; break;
    case T_UUID: size = 16; break;
    case T_STRING: {
      if (pos + 4 > b.length) return NEED;
      const n = b.i32be(pos);
      if (n < 0) return bad("negative string length");
      if (<i64>pos + 4 + <i64>n > <i64>b.length) return NEED;
      return pos + 4 + n;
    }
    case T_STRUCT:
      if (!push(K_STRUCT, 0, 0, 0)) return bad("nesting deeper than 64");
      return pos;
    case T_MAP: {
      if (pos + 6 > b.length) return NEED;
      const n = b.i32be(pos + 2);
      if (n < 0) return bad("negative map size");
      if (!push(K_MAP, <i64>n * 2, b.at(pos), b.at(pos + 1))) return bad("nesting deeper than 64");
      return pos + 6;
    }
    case T_SET: case T_LIST: {
      if (pos + 5 > b.length) return NEED;
      const n = b.i32be(pos + 1);
      if (n < 0) return bad("negative list size");
      if (!push(K_LIST, <i64>n, b.at(pos), 0)) return bad("nesting deeper than 64");
      return pos + 5;
    }
    default:
      return bad("unknown field type " + type.toString());
  }
  return pos + size > b.length ? NEED : pos + size;
}

function skipCompactValue(b: Bytes, pos: i32, type: u8): i32 {
  switch (type) {
    case C_TRUE: case C_FALSE: case C_BYTE:
      return pos + 1 > b.length ? NEED : pos + 1;
    case C_I16: case C_I32: case C_I64: {
      const v = readVarint(b, pos);
      if (v == -2) return bad("varint too long");
      return v < 0 ? NEED : varintEnd;
    }
    case C_DOUBLE: return pos + 8 > b.length ? NEED : pos + 8;
    case C_UUID: return pos + 16 > b.length ? NEED : pos + 16;
    case C_BINARY: {
      const n = readVarint(b, pos);
      if (n == -2 || n > 0x7fffffff) return bad("bad binary length");
      if (n < 0) return NEED;
      const end = <i64>varintEnd + n;
      return end > <i64>b.length ? NEED : <i32>end;
    }
    case C_STRUCT:
      if (!push(K_STRUCT, 0, 0, 0)) return bad("nesting deeper than 64");
      return pos;
    case C_LIST: case C_SET: {
      if (pos >= b.length) return NEED;
      const h = b.at(pos);
      let n: i64 = <i64>(h >> 4);
      let at = pos + 1;
      if (n == 15) {
        n = readVarint(b, at);
        if (n == -2 || n > 0x7fffffff) return bad("bad list size");
        if (n < 0) return NEED;
        at = varintEnd;
      }
      // Booleans in compact lists take one byte each; their element type is 1 or 2.
      if (!push(K_LIST, n, h & 0x0f, 0)) return bad("nesting deeper than 64");
      return at;
    }
    case C_MAP: {
      const n = readVarint(b, pos);
      if (n == -2 || n > 0x7fffffff) return bad("bad map size");
      if (n < 0) return NEED;
      let at = varintEnd;
      if (n == 0) return at;
      if (at >= b.length) return NEED;
      const kv = b.at(at);
      if (!push(K_MAP, n * 2, kv >> 4, kv & 0x0f)) return bad("nesting deeper than 64");
      return at + 1;
    }
    default:
      return bad("unknown compact type " + type.toString());
  }
}
