// The Dubbo codec (Dubbo 2.x protocol, hessian2 bodies). Requests: metadata `interface`,
// `method`, `version` and every string attachment; responses: status and string attachments.
// Heartbeats are answered by the proxy; one-way requests are forwarded. Encode rewrites the
// request id and the attachments map of requests (route request_mutation, filters) and of OK
// responses (filters' response mutations), fixing the body length.

import {
  Bytes, Codec, CodecInfo, Correlation, Frame, Mutation, Output, registerCodec, WELL_KNOWN_KEYS,
  ERR_BAD_RESPONSE, ERR_ROUTE_NOT_FOUND, FRAME_HAS_REQUEST_ID, KEY_INTERFACE, KEY_METHOD, KEY_VERSION,
  MSG_HEARTBEAT, MSG_ONEWAY, MSG_REQUEST, MSG_RESPONSE, OP_APPEND, OP_DELETE, OP_SET, RESPONSE_ERROR,
  STATUS_FRAME_TOO_LARGE, STATUS_OK, STATUS_PROTOCOL_ERROR, STATUS_UNCHANGED,
} from "../../sdk/assembly";
import {
  BAD, NEED, hessianError, intValue, readInt, readString, resetClasses, skipValue, strAt, strChunked,
  strLen, strNull, utf16Length,
} from "./hessian";

export * from "../../sdk/assembly/exports";

const HEADER = 16;
const MAGIC: u16 = 0xdabb;
const FLAG_REQUEST: u8 = 0x80, FLAG_TWOWAY: u8 = 0x40, FLAG_EVENT: u8 = 0x20;
const HESSIAN2: u8 = 2;
const OK: u8 = 20, BAD_RESPONSE: u8 = 50, SERVICE_NOT_FOUND: u8 = 60, SERVER_ERROR: u8 = 80;
const MAX_BODY: u32 = 0x7fffffff - HEADER;
// Response body flags.
const R_EXCEPTION = 0, R_VALUE = 1, R_NULL = 2, R_EXCEPTION_ATT = 3, R_VALUE_ATT = 4, R_NULL_ATT = 5;

/** Where the attachments map of the last request parsed by `parseRequest` sits. */
let mapAt: i32 = 0;
let mapEnd: i32 = 0;
let parseError: string = "";
const body = new Bytes();

/** Counts the arguments in a JVM parameter descriptor such as "Ljava/lang/String;[I". */
function countArgs(b: Bytes, at: i32, len: i32): i32 {
  let n = 0;
  let i = at;
  const end = at + len;
  while (i < end) {
    let c = b.at(i);
    while (c == 91 /* [ */ && i + 1 < end) { i++; c = b.at(i); }
    if (c == 76 /* L */) {
      while (i < end && b.at(i) != 59 /* ; */) i++;
    }
    i++;
    n++;
  }
  return n;
}

function failWith(frame: Frame, message: string): i32 {
  frame.fail(message);
  return STATUS_PROTOCOL_ERROR;
}

/** Parses a hessian2 request body; puts metadata when `frame` is given. Returns 1 or an error. */
function parseRequest(b: Bytes, frame: Frame | null): i32 {
  resetClasses();
  let p = HEADER;
  // dubbo version, service path, service version, method, parameter descriptor
  let r = readString(b, p); if (r <= 0) return r;
  p = r;
  r = readString(b, p); if (r <= 0) return r;
  if (frame && !strChunked && !strNull) frame.putRef(KEY_INTERFACE, strAt, strLen);
  p = r;
  r = readString(b, p); if (r <= 0) return r;
  if (frame && !strChunked && !strNull && strLen > 0) frame.putRef(KEY_VERSION, strAt, strLen);
  p = r;
  r = readString(b, p); if (r <= 0) return r;
  if (frame && !strChunked && !strNull) frame.putRef(KEY_METHOD, strAt, strLen);
  p = r;
  r = readString(b, p); if (r <= 0) return r;
  const args = strNull || strChunked ? 0 : countArgs(b, strAt, strLen);
  p = r;
  for (let i = 0; i < args; i++) {
    r = skipValue(b, p);
    if (r <= 0) return r;
    p = r;
  }
  mapAt = p;
  mapEnd = p;
  if (p >= b.length) return 1; // no attachments
  r = readAttachments(b, p, frame);
  if (r <= 0) return r;
  mapEnd = r;
  return 1;
}

/** Reads an attachments map ('H' or 'M' typed) at `p`, putting string pairs. */
function readAttachments(b: Bytes, p: i32, frame: Frame | null): i32 {
  const c = b.at(p);
  if (c == 0x4e /* null */) return p + 1;
  if (c == 0x4d /* M */) {
    const t = readString(b, p + 1); // the map's type name
    if (t <= 0) return t;
    p = t;
  } else if (c == 0x48 /* H */) {
    p++;
  } else {
    parseError = "attachments are not a map";
    return BAD;
  }
  while (true) {
    if (p >= b.length) return NEED;
    if (b.at(p) == 0x5a /* Z */) return p + 1;
    const k = readString(b, p);
    if (k <= 0) {
      // A non-string key: skip the pair.
      const sk = skipValue(b, p);
      if (sk <= 0) return sk;
      const sv = skipValue(b, sk);
      if (sv <= 0) return sv;
      p = sv;
      continue;
    }
    const keyAt = strAt, keyLen = strLen, keyOk = !strChunked && !strNull;
    const v = readString(b, k);
    if (v > 0) {
      if (frame && keyOk && !strChunked && !strNull) frame.putRefRef(keyAt, keyLen, strAt, strLen);
      p = v;
    } else {
      const sv = skipValue(b, k);
      if (sv <= 0) return sv;
      p = sv;
    }
  }
}

/** Parses a hessian2 response body: sets the status, puts string attachments. */
function parseResponse(b: Bytes, frame: Frame): i32 {
  resetClasses();
  let r = readInt(b, HEADER);
  if (r <= 0) return r;
  const flag = intValue;
  if (flag == R_EXCEPTION || flag == R_EXCEPTION_ATT) frame.status = RESPONSE_ERROR;
  if (flag < R_EXCEPTION || flag > R_NULL_ATT) { parseError = "unknown response flag " + flag.toString(); return BAD; }
  if (flag != R_NULL && flag != R_NULL_ATT) {
    r = skipValue(b, r);
    if (r <= 0) return r;
  }
  if (flag >= R_EXCEPTION_ATT) {
    r = readAttachments(b, r, frame);
    if (r <= 0) return r;
  }
  return 1;
}

function writeHessianString(out: Output, b: Bytes, at: i32, len: i32): void {
  const chars = utf16Length(b, at, len);
  if (chars <= 31) out.u8(<u8>chars);
  else if (chars <= 1023) out.u8(<u8>(0x30 + (chars >> 8))).u8(<u8>(chars & 0xff));
  else out.u8(0x53).u16be(<u16>chars); // attachment values beyond 65535 chars are not produced here
  out.bytes(b, at, len);
}

const scratch = new Output(256);
const scratchView = new Bytes();

function writeHessianText(out: Output, s: string): void {
  scratch.clear();
  scratch.string(s);
  writeHessianString(out, scratchView.reset(scratch.ptr, scratch.length), 0, scratch.length);
}

function header(out: Output, flags: u8, status: u8, id: u64, bodyLen: u32): void {
  out.u16be(MAGIC).u8(flags).u8(status).u64be(id).u32be(bodyLen);
}

class DubboCodec extends Codec {
  decode(input: Bytes, frame: Frame, upstream: bool): i32 {
    if (input.length < 2) return 0;
    if (input.u16be(0) != MAGIC) return failWith(frame, "not a Dubbo frame (bad magic)");
    if (input.length < HEADER) return 0;
    const len = input.u32be(12);
    if (len > MAX_BODY) { frame.fail("body length over 2 GiB"); return STATUS_FRAME_TOO_LARGE; }
    const total = HEADER + <i32>len;
    if (input.length < total) { frame.needBytes = total; return 0; }
    const flags = input.at(2);
    frame.requestId = input.u64be(4);
    frame.flags |= FRAME_HAS_REQUEST_ID;
    const b = body.reset(input.ptr, total);
    const hessian = (flags & 0x1f) == HESSIAN2;
    if (flags & FLAG_EVENT) {
      frame.messageType = MSG_HEARTBEAT;
      return total;
    }
    if (flags & FLAG_REQUEST) {
      frame.messageType = (flags & FLAG_TWOWAY) ? MSG_REQUEST : MSG_ONEWAY;
      if (!hessian) return total; // other serializations: forwarded, routed on defaults only
      const r = parseRequest(b, frame);
      if (r == 1) return total;
      return failWith(frame, "malformed request body: " + (r == NEED ? "truncated" : hessianError + parseError));
    }
    frame.messageType = MSG_RESPONSE;
    if (input.at(3) != OK) { frame.status = RESPONSE_ERROR; return total; }
    if (!hessian) return total;
    const r = parseResponse(b, frame);
    if (r == 1) return total;
    return failWith(frame, "malformed response body: " + (r == NEED ? "truncated" : hessianError + parseError));
  }

  encode(input: Bytes, messageType: u8, upstream: bool, mutation: Mutation, out: Output): i32 {
    if (mutation.isEmpty) return STATUS_UNCHANGED;
    const id = mutation.hasRequestId ? mutation.requestId : input.u64be(4);
    const flags = input.at(2);
    const hasOps = mutation.count > (mutation.hasRequestId ? <u32>1 : 0);
    const plain = (flags & FLAG_EVENT) == 0 && (flags & 0x1f) == HESSIAN2;
    if (hasOps && plain && !upstream && (flags & FLAG_REQUEST) != 0) {
      // A request: its attachments map (after the arguments) is rewritten.
      if (parseRequest(input, null) != 1) return STATUS_PROTOCOL_ERROR;
      header(out, flags, input.at(3), id, 0);
      out.bytes(input, HEADER, mapAt - HEADER);
      return finishMap(input, mapAt, mapEnd, mutation, out);
    }
    if (hasOps && plain && upstream && (flags & FLAG_REQUEST) == 0 && input.at(3) == OK) {
      // A response (filters' response mutations): the value keeps its bytes; the flag gains
      // "with attachments" and the map after the value is written or rewritten.
      resetClasses();
      const r = readInt(input, HEADER);
      if (r <= 0) return STATUS_PROTOCOL_ERROR;
      const flag = intValue;
      if (flag < R_EXCEPTION || flag > R_NULL_ATT) return STATUS_PROTOCOL_ERROR;
      const valueEnd = flag == R_NULL || flag == R_NULL_ATT ? r : skipValue(input, r);
      if (valueEnd <= 0) return STATUS_PROTOCOL_ERROR;
      const end = flag >= R_EXCEPTION_ATT ? readAttachments(input, valueEnd, null) : valueEnd;
      if (end <= 0) return STATUS_PROTOCOL_ERROR;
      header(out, flags, OK, id, 0);
      out.u8(<u8>(0x90 + (flag < R_EXCEPTION_ATT ? flag + 3 : flag))); // hessian compact int
      out.bytes(input, r, valueEnd - r);
      return finishMap(input, valueEnd, flag >= R_EXCEPTION_ATT ? end : valueEnd, mutation, out);
    }
    out.bytes(input, 0, input.length);
    out.setU32be(4, <u32>(id >> 32));
    out.setU32be(8, <u32>id);
    return STATUS_OK;
  }

  localReply(request: Bytes, kind: i32, message: Bytes, out: Output): i32 {
    const id: u64 = request.length >= HEADER && request.u16be(0) == MAGIC ? request.u64be(4) : 0;
    const status = kind == ERR_ROUTE_NOT_FOUND ? SERVICE_NOT_FOUND : kind == ERR_BAD_RESPONSE ? BAD_RESPONSE : SERVER_ERROR;
    header(out, HESSIAN2, status, id, 0);
    writeHessianString(out, message, 0, message.length);
    out.setU32be(12, <u32>(out.length - HEADER));
    return STATUS_OK;
  }

  heartbeatReply(request: Bytes, out: Output): i32 {
    header(out, FLAG_EVENT | HESSIAN2, OK, request.length >= HEADER ? request.u64be(4) : 0, 1);
    out.u8(0x4e); // null
    return STATUS_OK;
  }
}

/**
 * Writes an attachments map: the pairs of the map at [at, end) of `input` whose keys no op
 * touches, then SET/APPEND ops in order; then the rest of the input after the map, and the body
 * length. `end == at`: there was no map.
 */
function finishMap(input: Bytes, at: i32, end: i32, mutation: Mutation, out: Output): i32 {
  out.u8(0x48); // H: untyped map
  if (end > at && input.at(at) != 0x4e) {
    let p = input.at(at) == 0x4d ? readString(input, at + 1) : at + 1;
    while (p > 0 && p < end && input.at(p) != 0x5a) {
      const pairAt = p;
      const k = readString(input, p);
      const keyAt = strAt, keyLen = strLen, keyText = k > 0 && !strChunked && !strNull;
      const kEnd = k > 0 ? k : skipValue(input, p);
      const vEnd = skipValue(input, kEnd);
      if (vEnd <= 0) return STATUS_PROTOCOL_ERROR;
      if (!keyText || !touched(mutation, input, keyAt, keyLen)) out.bytes(input, pairAt, vEnd - pairAt);
      p = vEnd;
    }
  }
  mutation.rewind();
  while (mutation.next()) {
    const op = mutation.current;
    if (op.op != OP_SET && op.op != OP_APPEND) continue;
    if (op.keyId != 0) writeHessianText(out, WELL_KNOWN_KEYS[op.keyId]);
    else writeHessianString(out, op.key, 0, op.key.length);
    writeHessianString(out, op.value, 0, op.value.length);
  }
  out.u8(0x5a); // Z
  out.bytes(input, end, input.length - end);
  out.setU32be(12, <u32>(out.length - HEADER));
  return STATUS_OK;
}

/** Whether any SET/APPEND/DELETE op names the key [at, at+len) of `b`. */
function touched(m: Mutation, b: Bytes, at: i32, len: i32): bool {
  m.rewind();
  while (m.next()) {
    const op = m.current;
    if (op.op != OP_SET && op.op != OP_DELETE) continue;
    const name = op.keyId != 0 ? WELL_KNOWN_KEYS[op.keyId] : "";
    if (op.keyId != 0 ? b.equals(at, len, name) : (op.key.length == len && memory.compare(op.key.ptr, b.ptr + <usize>at, <usize>len) == 0)) return true;
  }
  return false;
}

const codec = new DubboCodec();
function make(): Codec { return codec; }
registerCodec(new CodecInfo("dubbo", "dubbo", "1.0.0", Correlation.RequestId, true), make);
