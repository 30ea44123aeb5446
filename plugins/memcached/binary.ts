// The binary protocol: 24-byte headers (magic, opcode, key length, extras length, status or
// vbucket, body length, opaque, cas), checked as memcached 1.6 checks them (proto_bin.c), since a
// packet it rejects there closes the connection — for every client sharing it. Quiet opcodes
// (GETQ, SETQ …) answer only on a miss or a failure, so a run of them is one frame with the
// non-quiet request that ends it, and its answer is every packet up to that request's.

import { Bytes } from "../../sdk/assembly";

export const REQUEST_MAGIC: u8 = 0x80;
export const RESPONSE_MAGIC: u8 = 0x81;
export const HEADER: i32 = 24;
const MAX_KEY: i32 = 250;
const MAX_BODY: i64 = 0x7fff_ffff - HEADER;

export const OP_GET: u8 = 0x00;
export const OP_QUIT: u8 = 0x07;
export const OP_NOOP: u8 = 0x0a;
export const OP_VERSION: u8 = 0x0b;
export const OP_GETK: u8 = 0x0c;
export const OP_STAT: u8 = 0x10;
export const OP_QUITQ: u8 = 0x17;
export const OP_SASL_LIST: u8 = 0x20;
export const OP_SASL_STEP: u8 = 0x22;

const NAMES: string[] = [
  "GET", "SET", "ADD", "REPLACE", "DELETE", "INCREMENT", "DECREMENT", "QUIT", "FLUSH", "GETQ", "NOOP",
  "VERSION", "GETK", "GETKQ", "APPEND", "PREPEND", "STAT", "SETQ", "ADDQ", "REPLACEQ", "DELETEQ",
  "INCREMENTQ", "DECREMENTQ", "QUITQ", "FLUSHQ", "APPENDQ", "PREPENDQ", "VERBOSITY", "TOUCH", "GAT",
  "GATQ", "UNKNOWN", "SASL_LIST_MECHS", "SASL_AUTH", "SASL_STEP", "GATK", "GATKQ",
];

export function opcodeName(op: u8): string {
  return <i32>op < NAMES.length ? unchecked(NAMES[op]) : "UNKNOWN";
}

/** Opcodes the server answers only on a miss or a failure. */
export function isQuiet(op: u8): bool {
  return op == 0x09 || op == 0x0d || (op >= 0x11 && op <= 0x1a) || op == 0x1e || op == 0x24;
}

/** Reads: safe to send twice. */
export function isIdempotentOp(op: u8): bool {
  return op == OP_GET || op == 0x09 || op == OP_GETK || op == 0x0d || op == OP_NOOP || op == OP_VERSION || op == OP_STAT;
}

/** Statuses that are answers, not failures: not found, exists, not stored. */
function isNormalStatus(status: u16): bool {
  return status == 0 || status == 1 || status == 2 || status == 5;
}

export let errorText: string = "";
export let needTotal: i32 = 0;

function error(message: string): i32 { errorText = message; return -1; }

/** What memcached accepts for `op` (dispatch_bin_command), or an error message; null when valid. */
function shapeError(op: u8, keylen: i32, extlen: i32, bodylen: i64): string | null {
  const base = op >= 0x09 && isQuiet(op) ? unquiet(op) : op;
  let ok = true;
  switch (base) {
    case OP_VERSION: case OP_NOOP: case OP_QUIT: case OP_SASL_LIST:
      ok = extlen == 0 && keylen == 0 && bodylen == 0; break;
    case 0x08: // FLUSH
      ok = keylen == 0 && bodylen == extlen && (extlen == 0 || extlen == 4); break;
    case 0x01: case 0x02: case 0x03: // SET ADD REPLACE
      ok = extlen == 8 && keylen != 0 && bodylen >= keylen + 8; break;
    case OP_GET: case OP_GETK: case 0x04: // GET GETK DELETE
      ok = extlen == 0 && keylen > 0 && bodylen == keylen; break;
    case 0x05: case 0x06: // INCREMENT DECREMENT
      ok = keylen > 0 && extlen == 20 && bodylen == keylen + extlen; break;
    case 0x0e: case 0x0f: // APPEND PREPEND
      ok = keylen > 0 && extlen == 0; break;
    case OP_STAT:
      ok = extlen == 0; break;
    case 0x21: case OP_SASL_STEP: // SASL_AUTH SASL_STEP
      ok = extlen == 0 && keylen != 0; break;
    case 0x1c: case 0x1d: case 0x23: // TOUCH GAT GATK
      ok = extlen == 4 && keylen != 0; break;
    default: // unknown opcodes are answered UNKNOWN_COMMAND, their body skipped
      ok = true;
  }
  return ok ? null : "malformed " + opcodeName(op) + " packet (key " + keylen.toString() + ", extras " + extlen.toString() + ", body " + bodylen.toString() + " bytes)";
}

/** The non-quiet opcode a quiet one stands for. */
function unquiet(op: u8): u8 {
  switch (op) {
    case 0x09: return OP_GET;
    case 0x0d: return OP_GETK;
    case 0x11: return 0x01;
    case 0x12: return 0x02;
    case 0x13: return 0x03;
    case 0x14: return 0x04;
    case 0x15: return 0x05;
    case 0x16: return 0x06;
    case 0x17: return OP_QUIT;
    case 0x18: return 0x08;
    case 0x19: return 0x0e;
    case 0x1a: return 0x0f;
    case 0x1e: return 0x1d;
    case 0x24: return 0x23;
    default: return op;
  }
}

/** The packet at `pos` (magic `magic`): its end, NEED (0, with `needTotal`) or an error. */
export function framePacket(b: Bytes, pos: i32, magic: u8): i32 {
  needTotal = 0;
  if (pos + HEADER > b.length) {
    if (pos < b.length && b.at(pos) != magic) return error("bad magic byte 0x" + b.at(pos).toString(16));
    needTotal = pos + HEADER;
    return 0;
  }
  if (b.at(pos) != magic) return error("bad magic byte 0x" + b.at(pos).toString(16));
  const keylen = <i32>b.u16be(pos + 2);
  const extlen = <i32>b.at(pos + 4);
  const bodylen = <i64>b.u32be(pos + 8);
  if (<i64>keylen + extlen > bodylen) return error("key and extras longer than the body");
  if (bodylen > MAX_BODY - pos) return error("body too long");
  if (magic == REQUEST_MAGIC) {
    if (keylen > MAX_KEY) return error("key longer than 250 bytes");
    const shape = shapeError(b.at(pos + 1), keylen, extlen, bodylen);
    if (shape !== null) return error(shape);
  }
  const end = pos + HEADER + <i32>bodylen;
  if (end > b.length) { needTotal = end; return 0; }
  return end;
}

export function keyOffset(b: Bytes, pos: i32): i32 { return pos + HEADER + <i32>b.at(pos + 4); }
export function keyLength(b: Bytes, pos: i32): i32 { return <i32>b.u16be(pos + 2); }

/** Set by frameResponse: some packet carried a failure status. */
export let responseError: bool = false;

/**
 * One binary answer at 0: the answers to quiet requests, then the packet of the request that
 * ended the run (STAT: every stat, up to the empty one that ends them).
 */
export function frameResponse(b: Bytes): i32 {
  responseError = false;
  let pos = 0;
  while (true) {
    const end = framePacket(b, pos, RESPONSE_MAGIC);
    if (end <= 0) return end;
    const op = b.at(pos + 1);
    const status = b.u16be(pos + 6);
    if (!isNormalStatus(status)) responseError = true;
    const more = isQuiet(op) || (op == OP_STAT && status == 0 && keyLength(b, pos) > 0);
    pos = end;
    if (!more) return pos;
  }
}
