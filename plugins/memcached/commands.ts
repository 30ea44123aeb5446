// The text protocol's commands as memcached 1.6 dispatches them (proto_text.c): what each one's
// arguments must be, whether `noreply` applies, and what shape its answer has. Anything the
// server would answer with more or fewer responses than we count — a storage line it rejects
// before reading the data block, a key it refuses mid-multiget — is refused here instead,
// because on a shared upstream connection one miscounted response answers another client.

import { Bytes } from "../../sdk/assembly";

// Command ids.
export const C_GET: u8 = 1;
export const C_GETS: u8 = 2;
export const C_BGET: u8 = 3;
export const C_GAT: u8 = 4;
export const C_GATS: u8 = 5;
export const C_SET: u8 = 6;
export const C_ADD: u8 = 7;
export const C_REPLACE: u8 = 8;
export const C_APPEND: u8 = 9;
export const C_PREPEND: u8 = 10;
export const C_CAS: u8 = 11;
export const C_INCR: u8 = 12;
export const C_DECR: u8 = 13;
export const C_DELETE: u8 = 14;
export const C_TOUCH: u8 = 15;
export const C_MG: u8 = 16;
export const C_MS: u8 = 17;
export const C_MD: u8 = 18;
export const C_MA: u8 = 19;
export const C_MN: u8 = 20;
export const C_ME: u8 = 21;
export const C_STATS: u8 = 22;
export const C_VERSION: u8 = 23;
export const C_VERBOSITY: u8 = 24;
export const C_FLUSH_ALL: u8 = 25;
export const C_CACHE_MEMLIMIT: u8 = 26;
export const C_QUIT: u8 = 27;
export const C_SHUTDOWN: u8 = 28;
export const C_SLABS: u8 = 29;
export const C_LRU: u8 = 30;
export const C_LRU_CRAWLER: u8 = 31;
export const C_WATCH: u8 = 32;

/** What the server answers a request with: the response decoder's `expect` word. */
export const EXPECT_LINE: u32 = 1;
/** `VALUE` blocks, then `END` (get, gets, gat, gats). */
export const EXPECT_VALUES: u32 = 2;
/** A list of lines ended by `END` or `EN` (stats, lru_crawler metadump/mgdump), or one line. */
export const EXPECT_LIST: u32 = 3;
/** One meta response: `VA <size> …` and its data, or one line. */
export const EXPECT_META: u32 = 4;
/** Everything up to and including an `MN` line (a run of quiet meta commands ended by `mn`). */
export const EXPECT_MN: u32 = 5;
/** Binary protocol packets (see binary.ts). */
export const EXPECT_BINARY: u32 = 6;

const NAMES: string[] = [
  "", "get", "gets", "bget", "gat", "gats", "set", "add", "replace", "append", "prepend", "cas",
  "incr", "decr", "delete", "touch", "mg", "ms", "md", "ma", "mn", "me", "stats", "version",
  "verbosity", "flush_all", "cache_memlimit", "quit", "shutdown", "slabs", "lru", "lru_crawler", "watch",
];

/** The command id of the token [at, at+len) (memcached compares case-sensitively), or 0. */
export function commandOf(b: Bytes, at: i32, len: i32): u8 {
  if (len < 2 || len > 14) return 0;
  for (let i = 1; i < NAMES.length; i++) {
    if (b.equals(at, len, unchecked(NAMES[i]))) return <u8>i;
  }
  return 0;
}

export function isStorage(c: u8): bool { return c >= C_SET && c <= C_CAS; }
export function isRetrieval(c: u8): bool { return c >= C_GET && c <= C_GATS; }
export function isMeta(c: u8): bool { return c >= C_MG && c <= C_ME; }

/** Commands that honour a trailing `noreply` (the server calls set_noreply_maybe for them first). */
export function takesNoreply(c: u8): bool {
  return isStorage(c) || c == C_INCR || c == C_DECR || c == C_DELETE || c == C_TOUCH
    || c == C_VERBOSITY || c == C_FLUSH_ALL || c == C_CACHE_MEMLIMIT;
}

/** Reads: sending one twice changes nothing, so a retry policy may retry them. */
export function isIdempotent(c: u8): bool {
  return c == C_GET || c == C_GETS || c == C_BGET || c == C_VERSION || c == C_MN || c == C_ME;
}

export function expectOf(c: u8): u32 {
  if (isRetrieval(c)) return EXPECT_VALUES;
  if (c == C_STATS || c == C_LRU_CRAWLER) return EXPECT_LIST;
  if (isMeta(c)) return EXPECT_META;
  return EXPECT_LINE;
}

/** Whether [at, at+len) is an unsigned decimal of at most `maxDigits` digits (no sign, as a token). */
export function isDigits(b: Bytes, at: i32, len: i32, maxDigits: i32): bool {
  if (len < 1 || len > maxDigits) return false;
  for (let i = 0; i < len; i++) if (<u32>b.at(at + i) - 48 > 9) return false;
  return true;
}

/** An unsigned 32-bit decimal (flags, as safe_strtoul). */
export function isU32(b: Bytes, at: i32, len: i32): bool {
  return isDigits(b, at, len, 10) && b.decimal(at, at + len) <= 0xffff_ffff;
}

/** A signed 32-bit decimal (exptime, as safe_strtol). */
export function isI32(b: Bytes, at: i32, len: i32): bool {
  const neg = len > 0 && b.at(at) == 45;
  const from = neg ? at + 1 : at;
  const n = neg ? len - 1 : len;
  return isDigits(b, from, n, 10) && b.decimal(from, from + n) <= (neg ? 0x8000_0000 : 0x7fff_ffff);
}

/** An unsigned 64-bit decimal (a cas unique). */
export function isU64(b: Bytes, at: i32, len: i32): bool {
  if (!isDigits(b, at, len, 20)) return false;
  if (len < 20) return true;
  // 20 digits: compare with 18446744073709551615 digit by digit.
  const max = "18446744073709551615";
  for (let i = 0; i < 20; i++) {
    const d = <i32>b.at(at + i);
    const m = max.charCodeAt(i);
    if (d != m) return d < m;
  }
  return true;
}
