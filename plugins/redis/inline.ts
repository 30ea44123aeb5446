// Inline commands tokenised exactly as redis-server does (sdssplitargs): blanks separate
// arguments, double quotes allow escapes, single quotes allow \', a closing quote must be
// followed by a blank or the end. A NUL byte is refused: redis-server looks for the end of an
// inline line with strchr(), which stops at the NUL, so it would wait for a newline forever.
// Faithfulness matters: a line the server reads as zero arguments gets no reply, and unbalanced
// quotes make it close the connection — on a shared upstream connection either would hurt
// other clients.

import { Bytes } from "../../sdk/assembly";

export const INLINE_ERROR: i32 = -1;
export const INLINE_NUL: i32 = -2;

/** Set by tokenize: positions of the first four arguments (content, without quotes). */
export const tokAt = new StaticArray<i32>(4);
export const tokLen = new StaticArray<i32>(4);

@inline function isBlank(c: u32): bool {
  return c == 32 || c == 9 || c == 10 || c == 13 || c == 11 || c == 12;
}

@inline function isHex(c: u32): bool {
  return (c - 48 < 10) || ((c | 32) - 97 < 6);
}

/** Tokenises [from, to); returns the number of arguments or INLINE_ERROR (unbalanced quotes). */
export function tokenize(b: Bytes, from: i32, to: i32): i32 {
  for (let i = from; i < to; i++) if (b.at(i) == 0) return INLINE_NUL;
  let p = from;
  let count = 0;
  while (true) {
    while (p < to && isBlank(b.at(p))) p++;
    if (p >= to) return count;
    const start = p;
    let inq = false, insq = false;
    let quoted = false;
    while (true) {
      if (inq) {
        if (p >= to) return INLINE_ERROR; // unterminated quotes
        const c = <u32>b.at(p);
        if (c == 92 && p + 3 < to && b.at(p + 1) == 120 && isHex(b.at(p + 2)) && isHex(b.at(p + 3))) p += 3;
        else if (c == 92 && p + 1 < to) p++;
        else if (c == 34) {
          if (p + 1 < to && !isBlank(b.at(p + 1))) return INLINE_ERROR;
          p++;
          break;
        }
      } else if (insq) {
        if (p >= to) return INLINE_ERROR;
        const c = <u32>b.at(p);
        if (c == 92 && p + 1 < to && b.at(p + 1) == 39) p++;
        else if (c == 39) {
          if (p + 1 < to && !isBlank(b.at(p + 1))) return INLINE_ERROR;
          p++;
          break;
        }
      } else {
        if (p >= to) break;
        const c = <u32>b.at(p);
        if (c == 32 || c == 10 || c == 13 || c == 9) break;
        if (c == 34) { inq = true; quoted = true; }
        else if (c == 39) { insq = true; quoted = true; }
      }
      p++;
    }
    if (count < 4) {
      // Quoted arguments are reported with their quotes stripped but escapes left as written.
      const q = quoted && (b.at(start) == 34 || b.at(start) == 39) ? 1 : 0;
      unchecked(tokAt[count] = start + q);
      unchecked(tokLen[count] = p - start - 2 * q);
    }
    count++;
  }
}
