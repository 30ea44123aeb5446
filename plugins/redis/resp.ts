// RESP2/RESP3 framing over raw guest memory. Every function returns the end offset of what it
// framed, NEED (more bytes needed) or a negative error, and never reads past `input.length`.

import { Bytes } from "../../sdk/assembly";

export const NEED: i32 = 0;
export const ERR_SYNTAX: i32 = -1;
export const ERR_TOO_LARGE: i32 = -2;

/** Longest header or inline line accepted, as redis-server (PROTO_INLINE_MAX_SIZE). */
export const MAX_LINE: i32 = 64 * 1024;
/** Largest bulk string, as redis-server's default proto-max-bulk-len. */
export const MAX_BULK: i64 = 512 * 1024 * 1024;
/** Most elements in one aggregate. */
export const MAX_ELEMENTS: i64 = 1024 * 1024 * 1024;

/** Set by the functions below when they return NEED and know the total length required. */
export let needTotal: i32 = 0;
/** Set when a function returns an error. */
export let errorText: string = "";

function syntax(message: string): i32 { errorText = message; return ERR_SYNTAX; }

/**
 * Parses [from, to) as redis-server's string2ll does: an optional '-', then digits without
 * leading zeros (and no '+'). Returns i64.MIN_VALUE when it would not parse there.
 */
export function respInteger(b: Bytes, from: i32, to: i32): i64 {
  if (from >= to || to - from > 19) return i64.MIN_VALUE;
  let i = from;
  const neg = b.at(i) == 45;
  if (neg) { i++; if (i == to) return i64.MIN_VALUE; }
  if (b.at(i) == 48) return i + 1 == to && !neg ? 0 : i64.MIN_VALUE; // "0" only
  if (b.at(i) == 43) return i64.MIN_VALUE; // '+'
  return b.decimal(from, to);
}

/** End of the line starting at `from` (index of its '\r'), NEED, or an error if it is too long. */
export function lineEnd(input: Bytes, from: i32): i32 {
  const crlf = input.indexOfCRLF(from);
  if (crlf < 0) {
    if (input.length - from > MAX_LINE) { errorText = "protocol line too long"; return ERR_TOO_LARGE; }
    return NEED;
  }
  return crlf;
}

/**
 * Frames one reply value starting at `from` (RESP2 and RESP3 types, nested aggregates and
 * attributes). Aggregates are prefix-encoded, so one counter of values still owed replaces
 * recursion: no stack to overflow on deeply nested input.
 */
export function frameReply(input: Bytes, from: i32): i32 {
  let pos = from;
  let owed: i64 = 1;
  needTotal = 0;
  while (owed > 0) {
    if (pos >= input.length) return NEED;
    const type = input.at(pos);
    const eol = lineEnd(input, pos + 1);
    if (eol <= 0) return eol;
    owed--;
    switch (type) {
      case 43: case 45: case 58: case 95: case 44: case 35: case 40: // + - : _ , # (
        pos = eol + 2;
        break;
      case 36: case 33: case 61: { // $ ! =  (bulk, blob error, verbatim)
        const len = respInteger(input, pos + 1, eol);
        if (len == -1 && type == 36) { pos = eol + 2; break; }
        if (len < 0) return syntax("invalid bulk length");
        if (len > MAX_BULK) { errorText = "bulk length exceeds 512 MB"; return ERR_TOO_LARGE; }
        const end = <i64>eol + 2 + len + 2;
        if (end > <i64>input.length) { needTotal = <i32>end; return NEED; }
        if (input.at(<i32>end - 2) != 13 || input.at(<i32>end - 1) != 10) return syntax("bulk not terminated by CRLF");
        pos = <i32>end;
        break;
      }
      case 42: case 126: case 62: case 37: case 124: { // * ~ > % |
        const n = respInteger(input, pos + 1, eol);
        if (n == -1 && type == 42) { pos = eol + 2; break; }
        if (n < 0 || n > MAX_ELEMENTS) return syntax("invalid aggregate length");
        let more = n;
        if (type == 37) more = n * 2;          // map: key and value per entry
        else if (type == 124) more = n * 2 + 1; // attribute: its pairs, then the value it decorates
        owed += more;
        pos = eol + 2;
        break;
      }
      default:
        return syntax("unknown RESP type byte " + type.toString());
    }
  }
  return pos;
}
