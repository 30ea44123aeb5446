// The text protocol (classic and meta commands), framed as memcached 1.6 reads it: a line ended
// by "\n" (an "\r" before it is dropped), tokens split on spaces only, storage commands followed
// by a data block of the announced length and "\r\n". Every function returns the end offset of
// what it framed, NEED or ERR (with `errorText`), and never reads past `input.length`.

import { Bytes } from "../../sdk/assembly";
import {
  C_BGET, C_CACHE_MEMLIMIT, C_CAS, C_DELETE, C_FLUSH_ALL, C_GAT, C_GATS, C_GET, C_GETS, C_INCR, C_DECR, C_LRU, C_LRU_CRAWLER,
  C_MA, C_MD, C_ME, C_MG, C_MN, C_MS, C_QUIT, C_SHUTDOWN, C_SLABS, C_TOUCH, C_VERBOSITY, C_VERSION, C_WATCH,
  EXPECT_LINE, EXPECT_LIST, EXPECT_META, EXPECT_MN, EXPECT_VALUES,
  commandOf, isDigits, isI32, isRetrieval, isStorage, isU32, isU64, takesNoreply,
} from "./commands";

export const NEED: i32 = 0;
export const ERR: i32 = -1;

/** Longest command line, as memcached: past 2048 bytes without "\n" it closes the connection (unless the line is a get/gets). */
export const MAX_LINE: i32 = 2048;
/** Longest get/gets line (memcached takes multigets of any length; the listener's max_frame_size also applies). */
export const MAX_GET_LINE: i32 = 1024 * 1024;
export const MAX_KEY: i32 = 250;
/** Longest response line (a VALUE header, a stats line). */
const MAX_RESPONSE_LINE: i32 = 64 * 1024;
/** Tokens whose positions are kept; a get's further keys are checked as they are scanned. */
const MAX_TOKENS = 24;
/** ms takes at most this many tokens (memcached's MFLAG_MAX_OPT_LENGTH counts its terminal token too). */
const MAX_MS_TOKENS = 19;
const INT_MAX: i64 = 0x7fff_ffff;

export let errorText: string = "";
export let needTotal: i32 = 0;

function error(message: string): i32 { errorText = message; return ERR; }

const tokAt = new StaticArray<i32>(MAX_TOKENS);
const tokLen = new StaticArray<i32>(MAX_TOKENS);
let tokCount: i32 = 0;

/** What `frameCommand` found, read by the caller for metadata. */
export let command: u8 = 0;
export let cmdAt: i32 = 0;
export let cmdLen: i32 = 0;
export let keyAt: i32 = -1;
export let keyLen: i32 = 0;
export let noreply: bool = false;
/** A meta command with the `q` flag: the server stays silent unless something fails. */
export let quiet: bool = false;

/** Splits [from, to) on spaces; keeps the first MAX_TOKENS positions; returns the count. A key longer than MAX_KEY in a get fails. */
function tokenize(b: Bytes, from: i32, to: i32): i32 {
  let n = 0;
  let i = from;
  while (i < to) {
    while (i < to && b.at(i) == 32) i++;
    if (i >= to) break;
    const start = i;
    while (i < to && b.at(i) != 32) i++;
    if (n < MAX_TOKENS) { unchecked(tokAt[n] = start); unchecked(tokLen[n] = i - start); }
    else if (i - start > MAX_KEY) return -1; // a get's key past the kept positions
    n++;
  }
  return n;
}

@inline function tokIs(i: i32, b: Bytes, s: string): bool {
  return i < tokCount && b.equals(unchecked(tokAt[i]), unchecked(tokLen[i]), s);
}

function startsWithGet(b: Bytes, start: i32): bool {
  let i = start;
  while (i < b.length && b.at(i) == 32 && i - start <= 100) i++;
  return b.equals(i, 4, "get ") || b.equals(i, 5, "gets ");
}

/**
 * Frames the command at `start`: its line and, for storage commands, its data block. Sets
 * `command`, the key and the noreply/quiet facts.
 */
export function frameCommand(b: Bytes, start: i32): i32 {
  needTotal = 0;
  const nl = b.indexOf(10, start);
  if (nl < 0) {
    const avail = b.length - start;
    if (avail > MAX_LINE && (!startsWithGet(b, start) || avail > MAX_GET_LINE)) return error("command line too long");
    return NEED;
  }
  const lineTo = nl > start && b.at(nl - 1) == 13 ? nl - 1 : nl;
  for (let i = start; i < lineTo; i++) if (b.at(i) == 0) return error("NUL byte in a command line");
  tokCount = tokenize(b, start, lineTo);
  if (tokCount < 0) return error("key longer than 250 bytes");
  if (tokCount == 0) return error("empty command line");
  cmdAt = unchecked(tokAt[0]);
  cmdLen = unchecked(tokLen[0]);
  command = commandOf(b, cmdAt, cmdLen);
  if (command == 0) return error("unknown command '" + b.toString(cmdAt, cmdLen < 32 ? cmdLen : 32) + "'");
  if (nl - start > MAX_LINE && command != C_GET && command != C_GETS) return error("command line too long");
  keyAt = -1;
  keyLen = 0;
  quiet = false;
  noreply = takesNoreply(command) && tokIs(tokCount - 1, b, "noreply");
  const n = tokCount;
  const c = command;
  let end = nl + 1;
  if (isRetrieval(c)) {
    const first = c == C_GAT || c == C_GATS ? 2 : 1;
    if (n <= first) return error("no key");
    if (first == 2 && !isI32(b, unchecked(tokAt[1]), unchecked(tokLen[1]))) return error("invalid exptime");
    const kept = n < MAX_TOKENS ? n : MAX_TOKENS;
    for (let i = first; i < kept; i++) if (unchecked(tokLen[i]) > MAX_KEY) return error("key longer than 250 bytes");
    setKey(first);
    return end;
  }
  if (isStorage(c)) {
    const base = c == C_CAS ? 6 : 5;
    if (n != base && n != base + 1) return error("wrong number of arguments");
    if (!keyOk(1) || !isU32(b, unchecked(tokAt[2]), unchecked(tokLen[2])) || !isI32(b, unchecked(tokAt[3]), unchecked(tokLen[3]))) return error("bad command line format");
    if (c == C_CAS && !isU64(b, unchecked(tokAt[5]), unchecked(tokLen[5]))) return error("bad command line format");
    return dataBlock(b, 4, end);
  }
  switch (c) {
    case C_MS: {
      if (n < 3 || n > MAX_MS_TOKENS || !keyOk(1)) return error("bad command line format");
      quiet = quietFlag(b, 3);
      return dataBlock(b, 2, end);
    }
    case C_MG: case C_MD: case C_MA: {
      if (n < 2) return error("no key");
      setKey(1);
      quiet = quietFlag(b, 2);
      return end;
    }
    case C_ME: {
      if (n < 2) return error("no key");
      setKey(1);
      return end;
    }
    case C_MN: case C_VERSION: case C_QUIT: case C_SHUTDOWN:
      return end;
    case C_INCR: case C_DECR: {
      if ((n != 3 && n != 4) || !keyOk(1)) return error("bad command line format");
      if (!isU64(b, unchecked(tokAt[2]), unchecked(tokLen[2]))) return error("invalid numeric delta argument");
      return end;
    }
    case C_TOUCH: {
      if ((n != 3 && n != 4) || !keyOk(1)) return error("bad command line format");
      if (!isI32(b, unchecked(tokAt[2]), unchecked(tokLen[2]))) return error("invalid exptime argument");
      return end;
    }
    case C_DELETE: {
      // As memcached: `delete <key> [0] [noreply]`.
      const zero = tokIs(2, b, "0");
      const valid = n == 2 || (n == 3 && (zero || noreply)) || (n == 4 && zero && noreply);
      if (!valid || !keyOk(1)) return error("bad command line format. Usage: delete <key> [noreply]");
      return end;
    }
    case C_VERBOSITY: case C_CACHE_MEMLIMIT: {
      if (n != 2 && n != 3) return error("wrong number of arguments");
      return end;
    }
    case C_FLUSH_ALL: {
      if (n > 3) return error("wrong number of arguments");
      return end;
    }
    case C_SLABS: case C_LRU: case C_LRU_CRAWLER: {
      if (n < 2) return error("wrong number of arguments");
      if (tokIs(n - 1, b, "noreply")) return error("noreply is not supported on " + b.toString(cmdAt, cmdLen) + " through meltemi");
      return end;
    }
    case C_WATCH:
      return error("watch turns the connection into a stream of log lines that answer no request; connect to the server for it");
    default: // C_STATS
      return end;
  }
}

/** A storage command's data block: the size is token `sizeTok`; it must end with "\r\n". */
function dataBlock(b: Bytes, sizeTok: i32, lineEnd: i32): i32 {
  const at = unchecked(tokAt[sizeTok]);
  const len = unchecked(tokLen[sizeTok]);
  if (!isDigits(b, at, len, 10)) return error("bad data length");
  const size = b.decimal(at, at + len);
  if (size > INT_MAX - 2) return error("bad data length");
  const end = <i64>lineEnd + size + 2;
  if (end > <i64>b.length) {
    // Past 2 GiB: the most a frame can need, so the listener's max_frame_size refuses it now.
    needTotal = end > INT_MAX ? <i32>INT_MAX : <i32>end;
    return NEED;
  }
  if (b.at(<i32>end - 2) != 13 || b.at(<i32>end - 1) != 10) return error("bad data chunk");
  return <i32>end;
}

function keyOk(i: i32): bool {
  if (i >= tokCount || unchecked(tokLen[i]) > MAX_KEY) return false;
  setKey(i);
  return true;
}

@inline function setKey(i: i32): void {
  keyAt = unchecked(tokAt[i]);
  keyLen = unchecked(tokLen[i]);
}

/** Whether a meta flag token from `from` on starts with 'q' (memcached reads flags by their first byte). */
function quietFlag(b: Bytes, from: i32): bool {
  const kept = tokCount < MAX_TOKENS ? tokCount : MAX_TOKENS;
  for (let i = from; i < kept; i++) if (b.at(unchecked(tokAt[i])) == 113 /* q */) return true;
  return false;
}

export function isQuitOrShutdown(c: u8): bool { return c == C_QUIT || c == C_SHUTDOWN; }
export function isMn(c: u8): bool { return c == C_MN; }

// ---- responses ----

/** Set by frameResponse: the response contained an error line. */
export let responseError: bool = false;

/** End of the "\r\n"-ended line at `from` (index of its "\r"), NEED, or ERR. */
function lineEnd(b: Bytes, from: i32): i32 {
  const crlf = b.indexOfCRLF(from);
  if (crlf < 0) {
    if (b.length - from > MAX_RESPONSE_LINE) return error("response line too long");
    return -2;
  }
  return crlf;
}

function startsWith(b: Bytes, at: i32, to: i32, s: string): bool {
  return to - at >= s.length && b.equals(at, s.length, s);
}

function isErrorLine(b: Bytes, at: i32, to: i32): bool {
  return b.equals(at, to - at, "ERROR") || startsWith(b, at, to, "CLIENT_ERROR") || startsWith(b, at, to, "SERVER_ERROR");
}

/** The decimal token number `index` (0-based) of the line [at, to), or -1. */
function tokenNumber(b: Bytes, at: i32, to: i32, index: i32): i64 {
  let i = at;
  for (let t = 0; t <= index; t++) {
    while (i < to && b.at(i) == 32) i++;
    const start = i;
    while (i < to && b.at(i) != 32) i++;
    if (t == index) return isDigits(b, start, i - start, 10) ? b.decimal(start, i) : -1;
  }
  return -1;
}

/** Skips the data block of `size` bytes after a line ending at `eol`; returns its end, or NEED/ERR. */
function skipData(b: Bytes, eol: i32, size: i64): i32 {
  if (size < 0 || size > INT_MAX - 2) return error("bad value length in a response");
  const end = <i64>eol + 2 + size + 2;
  if (end > <i64>b.length) { needTotal = end > INT_MAX ? <i32>INT_MAX : <i32>end; return NEED; }
  if (b.at(<i32>end - 2) != 13 || b.at(<i32>end - 1) != 10) return error("value not terminated by CRLF");
  return <i32>end;
}

function isListItem(b: Bytes, at: i32, to: i32): bool {
  return startsWith(b, at, to, "STAT ") || startsWith(b, at, to, "ITEM ") || startsWith(b, at, to, "PREFIX ")
    || startsWith(b, at, to, "key=") || startsWith(b, at, to, "mg ");
}

/** What a response starting with the line [at, to) must be, when no request says (expect 0). */
function guess(b: Bytes, at: i32, to: i32): u32 {
  if (startsWith(b, at, to, "VALUE ")) return EXPECT_VALUES;
  if (startsWith(b, at, to, "VA ")) return EXPECT_META;
  if (isListItem(b, at, to)) return EXPECT_LIST;
  return EXPECT_LINE;
}

/** Frames one text response of the shape `expect` at 0. */
export function frameResponse(b: Bytes, expect: u32): i32 {
  needTotal = 0;
  responseError = false;
  let pos = 0;
  let mode = expect;
  let first = true;
  while (true) {
    const eol = lineEnd(b, pos);
    if (eol == ERR) return ERR;
    if (eol < 0) return NEED;
    if (first && (mode < EXPECT_LINE || mode > EXPECT_MN)) mode = guess(b, pos, eol); // no request said (0)
    if (isErrorLine(b, pos, eol)) {
      responseError = true;
      if (mode != EXPECT_MN) return eol + 2;
    }
    switch (mode) {
      case EXPECT_LINE:
        return eol + 2;
      case EXPECT_META: {
        if (!startsWith(b, pos, eol, "VA ")) return eol + 2;
        return skipData(b, eol, tokenNumber(b, pos, eol, 1));
      }
      case EXPECT_VALUES: {
        if (b.equals(pos, eol - pos, "END")) return eol + 2;
        if (!startsWith(b, pos, eol, "VALUE ")) return error("expected VALUE or END in a retrieval response");
        const next = skipData(b, eol, tokenNumber(b, pos, eol, 3));
        if (next <= 0) return next;
        pos = next;
        break;
      }
      case EXPECT_LIST: {
        if (first && !isListItem(b, pos, eol)) return eol + 2;
        if (!first && (b.equals(pos, eol - pos, "END") || b.equals(pos, eol - pos, "EN"))) return eol + 2;
        pos = eol + 2;
        break;
      }
      default: { // EXPECT_MN: every response of the run, then MN
        if (b.equals(pos, eol - pos, "MN")) return eol + 2;
        if (startsWith(b, pos, eol, "VA ") || startsWith(b, pos, eol, "VALUE ")) {
          const next = skipData(b, eol, tokenNumber(b, pos, eol, startsWith(b, pos, eol, "VA ") ? 1 : 3));
          if (next <= 0) return next;
          pos = next;
        } else {
          pos = eol + 2;
        }
      }
    }
    first = false;
  }
}

