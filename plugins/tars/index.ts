// The TARS codec (the RPC protocol of the TARS framework, as @tars/rpc and the C++/Java/Go
// frameworks speak it): multiplexed requests matched by iRequestId, which the proxy rewrites on
// shared upstream connections; `servant`, `func` and the request's context map as metadata; route
// mutations written into the context map; one-way calls (cPacketType 1). TUP packets (iVersion 2
// and 3) have the same envelope both ways and are read the same.

import {
  Bytes, Codec, CodecInfo, Correlation, Frame, Mutation, Output, registerCodec, WELL_KNOWN_KEYS,
  ERR_NO_HEALTHY_UPSTREAM, ERR_CONNECT_FAILURE, ERR_OVER_LIMIT, ERR_PERMISSION_DENIED, ERR_PROTOCOL_ERROR, ERR_ROUTE_NOT_FOUND,
  ERR_CLUSTER_NOT_FOUND, ERR_TIMEOUT, ERR_UPSTREAM_CLOSED,
  FRAME_HAS_REQUEST_ID, KEY_METHOD, KEY_SERVICE, MSG_ONEWAY, MSG_RESPONSE, OP_APPEND, OP_DELETE, OP_SET,
  RESPONSE_ERROR, STATUS_OK, STATUS_PROTOCOL_ERROR, STATUS_UNCHANGED,
} from "../../sdk/assembly";
import {
  HEADER, MIN_PACKET, VERSION_TUP_COMPLEX, VERSION_TUP_SIMPLE, fieldAt, fieldEnd, fieldInt, fieldStrAt, fieldStrLen,
  indexFields, intField, isMap, mapDone, nextPair, openMap, packetError, pairKeyAt, pairKeyLen, pairValueAt,
  pairValueLen, stringField, tailAt, valueAt,
} from "./packet";
import { T_INT1, T_MAP, T_SIMPLE_LIST, writeEmptyBytes, writeEmptyMap, writeHead, writeInt, writeString, writeStringBytes } from "./stream";

export * from "../../sdk/assembly/exports";

const TAG_VERSION = 1;
const TAG_PACKET_TYPE = 2;
const TAG_REQUEST_ID = 4;
const TAG_SERVANT = 5;
const TAG_FUNC = 6;
const TAG_CONTEXT = 9;
const TAG_STATUS = 10;
const TAG_RESPONSE_ID = 3;
const TAG_RET = 5;

const ONEWAY: i64 = 1;
/**
 * Context entries past this many are forwarded but are not metadata: every route match and
 * filter looks keys up among a frame's entries, and a packet of tens of thousands of empty
 * entries would cost the proxy a hundred times what its bytes cost as plain traffic.
 */
const MAX_CONTEXT_METADATA = 64;

// The framework's result codes (TarsError / BaseF.tars) a local reply uses.
const TARSSERVERDECODEERR: i32 = -1;
const TARSSERVERNOSERVANTERR: i32 = -4;
const TARSINVOKETIMEOUT: i32 = -7;
const TARSPROXYCONNECTERR: i32 = -8;
const TARSSERVEROVERLOAD: i32 = -9;
const TARSADAPTERNULL: i32 = -10;
const TARSSERVERUNKNOWNERR: i32 = -99;

function fail(frame: Frame, message: string): i32 {
  frame.fail(message);
  return STATUS_PROTOCOL_ERROR;
}

/** Whether the packet is a TUP one (a RequestPacket both ways). */
function isTup(version: i64): bool {
  return version == VERSION_TUP_SIMPLE || version == VERSION_TUP_COMPLEX;
}

class TarsCodec extends Codec {
  decode(input: Bytes, frame: Frame, upstream: bool): i32 {
    if (input.length < HEADER) return 0;
    const declared = input.u32be(0);
    if (declared < <u32>MIN_PACKET) return fail(frame, "packet length " + declared.toString() + " is below the smallest packet");
    if (declared > <u32>i32.MAX_VALUE) { frame.needBytes = i32.MAX_VALUE; return 0; }
    const len = <i32>declared;
    if (input.length < len) { frame.needBytes = len; return 0; }
    if (indexFields(input, len) < 0) return fail(frame, packetError);
    if (intField(input, TAG_VERSION, -1) < 0) return fail(frame, packetError);
    const version = fieldInt;
    if (version < 0) return fail(frame, "iVersion is missing");
    return upstream ? this.response(input, len, version, frame) : this.request(input, len, frame);
  }

  private request(input: Bytes, len: i32, frame: Frame): i32 {
    if (requestId(input, TAG_REQUEST_ID, frame) < 0) return STATUS_PROTOCOL_ERROR;
    if (intField(input, TAG_PACKET_TYPE, 0) < 0) return fail(frame, packetError);
    if (fieldInt == ONEWAY) frame.messageType = MSG_ONEWAY;
    if (stringField(input, TAG_SERVANT) < 0) return fail(frame, "sServantName: " + packetError);
    frame.putRef(KEY_SERVICE, fieldStrAt, fieldStrLen);
    frame.putNamedRef("servant", fieldStrAt, fieldStrLen);
    if (stringField(input, TAG_FUNC) < 0) return fail(frame, "sFuncName: " + packetError);
    frame.putRef(KEY_METHOD, fieldStrAt, fieldStrLen);
    frame.putNamedRef("func", fieldStrAt, fieldStrLen);
    if (putContext(input, frame) < 0) return STATUS_PROTOCOL_ERROR;
    return len;
  }

  private response(input: Bytes, len: i32, version: i64, frame: Frame): i32 {
    frame.messageType = MSG_RESPONSE;
    if (isTup(version)) {
      if (requestId(input, TAG_REQUEST_ID, frame) < 0) return STATUS_PROTOCOL_ERROR;
      if (tupResultCode(input) != 0) frame.status = RESPONSE_ERROR;
      return len;
    }
    if (requestId(input, TAG_RESPONSE_ID, frame) < 0) return STATUS_PROTOCOL_ERROR;
    if (intField(input, TAG_RET, 0) < 0) return fail(frame, packetError);
    if (fieldInt != 0) frame.status = RESPONSE_ERROR;
    if (putContext(input, frame) < 0) return STATUS_PROTOCOL_ERROR;
    return len;
  }

  encode(input: Bytes, messageType: u8, upstream: bool, mutation: Mutation, out: Output): i32 {
    if (mutation.isEmpty) return STATUS_UNCHANGED;
    const len = <i32>input.u32be(0);
    if (len > input.length || indexFields(input, len) < 0 || intField(input, TAG_VERSION, 1) < 0) return STATUS_PROTOCOL_ERROR;
    const idTag = upstream && !isTup(fieldInt) ? TAG_RESPONSE_ID : TAG_REQUEST_ID;
    const rewriteContext = mutation.count > (mutation.hasRequestId ? <u32>1 : 0);
    out.u32be(0);
    for (let tag = 0; tag <= TAG_STATUS; tag++) {
      if (tag == idTag && mutation.hasRequestId) {
        writeInt(out, tag, <i64><i32><u32>mutation.requestId);
      } else if (tag == TAG_CONTEXT && rewriteContext) {
        if (writeContext(input, mutation, out) < 0) return STATUS_PROTOCOL_ERROR;
      } else if (unchecked(fieldAt[tag]) >= 0) {
        out.bytes(input, unchecked(fieldAt[tag]), unchecked(fieldEnd[tag]) - unchecked(fieldAt[tag]));
      }
    }
    out.bytes(input, tailAt, len - tailAt);
    out.setU32be(0, <u32>out.length);
    return STATUS_OK;
  }

  localReply(request: Bytes, kind: i32, message: Bytes, out: Output): i32 {
    let id: i64 = 0;
    let version: i64 = 1;
    let known = false;
    if (request.length >= MIN_PACKET && <i32>request.u32be(0) <= request.length && <i32>request.u32be(0) >= MIN_PACKET
        && indexFields(request, <i32>request.u32be(0)) > 0) {
      known = true;
      if (intField(request, TAG_VERSION, 1) > 0) version = fieldInt;
      if (intField(request, TAG_REQUEST_ID, 0) > 0) id = fieldInt;
    }
    const code = resultCode(kind);
    out.u32be(0);
    if (known && isTup(version)) {
      // A TUP client reads a RequestPacket back, its result in the status map.
      writeInt(out, TAG_VERSION, version);
      writeInt(out, TAG_PACKET_TYPE, 0);
      writeInt(out, 3, 0);
      writeInt(out, TAG_REQUEST_ID, id);
      copyStringField(request, TAG_SERVANT, out);
      copyStringField(request, TAG_FUNC, out);
      // An empty UniAttribute (an empty map), as the framework's server sends with a result code.
      writeHead(out, 7, T_SIMPLE_LIST);
      writeHead(out, 0, T_INT1);
      writeInt(out, 0, 2);
      out.u8(0x08).u8(0x0c);
      writeInt(out, 8, 0);
      writeEmptyMap(out, TAG_CONTEXT);
      writeHead(out, TAG_STATUS, T_MAP);
      writeInt(out, 0, 2);
      writeString(out, 0, "STATUS_RESULT_CODE");
      writeString(out, 1, code.toString());
      writeString(out, 0, "STATUS_RESULT_DESC");
      writeStringBytes(out, 1, message, 0, message.length);
    } else {
      writeInt(out, TAG_VERSION, 1);
      writeInt(out, TAG_PACKET_TYPE, 0);
      writeInt(out, TAG_RESPONSE_ID, id);
      writeInt(out, 4, 0);
      writeInt(out, TAG_RET, code);
      writeEmptyBytes(out, 6);
      writeEmptyMap(out, 7);
      writeStringBytes(out, 8, message, 0, message.length);
    }
    out.setU32be(0, <u32>out.length);
    return STATUS_OK;
  }
}

/** Reads the iRequestId field `tag` into the frame; -1 after failing it. */
function requestId(input: Bytes, tag: i32, frame: Frame): i32 {
  if (unchecked(fieldAt[tag]) < 0) return fail(frame, "iRequestId is missing");
  if (intField(input, tag, 0) < 0) return fail(frame, "iRequestId: " + packetError);
  if (fieldInt < i32.MIN_VALUE || fieldInt > i32.MAX_VALUE) return fail(frame, "iRequestId out of the int range");
  // Ids are TARS ints (signed 32-bit); the host's are unsigned: the same 32 bits either way.
  frame.requestId = <u64><u32><i32>fieldInt;
  frame.flags |= FRAME_HAS_REQUEST_ID;
  return 1;
}

/** Puts the context map's pairs as metadata; -1 after failing the frame if it is not a map of strings. */
function putContext(input: Bytes, frame: Frame): i32 {
  if (unchecked(fieldAt[TAG_CONTEXT]) < 0) return 1;
  if (!isMap(TAG_CONTEXT)) return fail(frame, "context is not a map");
  if (openMap(input, unchecked(valueAt[TAG_CONTEXT]), unchecked(fieldEnd[TAG_CONTEXT])) < 0) return fail(frame, "context: bad map size");
  let n = 0;
  while (nextPair(input)) {
    if (n++ < MAX_CONTEXT_METADATA) frame.putRefRef(pairKeyAt, pairKeyLen, pairValueAt, pairValueLen);
  }
  if (!mapDone()) return fail(frame, "context is not a map<string, string>");
  return 1;
}

/** STATUS_RESULT_CODE of a TUP response's status map (0 when absent). */
function tupResultCode(input: Bytes): i64 {
  if (!isMap(TAG_STATUS)) return 0;
  if (openMap(input, unchecked(valueAt[TAG_STATUS]), unchecked(fieldEnd[TAG_STATUS])) < 0) return 0;
  while (nextPair(input)) {
    if (input.equals(pairKeyAt, pairKeyLen, "STATUS_RESULT_CODE")) {
      if (pairValueLen == 0) return 0;
      const negative = input.at(pairValueAt) == 0x2d;
      const v = input.decimal(pairValueAt + (negative ? 1 : 0), pairValueAt + pairValueLen);
      return v == 0 ? 0 : 1; // a non-number is not success either
    }
  }
  return 0;
}

/** Writes the context map with the mutation's SET/APPEND/DELETE ops applied. */
function writeContext(input: Bytes, mutation: Mutation, out: Output): i32 {
  const present = isMap(TAG_CONTEXT);
  let kept = 0;
  if (present) {
    if (openMap(input, unchecked(valueAt[TAG_CONTEXT]), unchecked(fieldEnd[TAG_CONTEXT])) < 0) return -1;
    while (nextPair(input)) if (!touched(mutation, input, pairKeyAt, pairKeyLen)) kept++;
    if (!mapDone()) return -1;
  }
  let added = 0;
  mutation.rewind();
  while (mutation.next()) if (mutation.current.op == OP_SET || mutation.current.op == OP_APPEND) added++;
  writeHead(out, TAG_CONTEXT, T_MAP);
  writeInt(out, 0, kept + added);
  if (present) {
    openMap(input, unchecked(valueAt[TAG_CONTEXT]), unchecked(fieldEnd[TAG_CONTEXT]));
    while (nextPair(input)) {
      if (!touched(mutation, input, pairKeyAt, pairKeyLen)) {
        writeStringBytes(out, 0, input, pairKeyAt, pairKeyLen);
        writeStringBytes(out, 1, input, pairValueAt, pairValueLen);
      }
    }
  }
  mutation.rewind();
  while (mutation.next()) {
    const op = mutation.current;
    if (op.op != OP_SET && op.op != OP_APPEND) continue;
    if (op.keyId != 0) writeString(out, 0, WELL_KNOWN_KEYS[op.keyId]);
    else writeStringBytes(out, 0, op.key, 0, op.key.length);
    writeStringBytes(out, 1, op.value, 0, op.value.length);
  }
  return 1;
}

/** Whether a SET or DELETE op names the key [at, at+len) of `b` (its old pair is dropped). */
function touched(m: Mutation, b: Bytes, at: i32, len: i32): bool {
  m.rewind();
  while (m.next()) {
    const op = m.current;
    if (op.op != OP_SET && op.op != OP_DELETE) continue;
    if (op.keyId != 0 ? b.equals(at, len, WELL_KNOWN_KEYS[op.keyId]) : (op.key.length == len && memory.compare(op.key.ptr, b.ptr + <usize>at, <usize>len) == 0)) return true;
  }
  return false;
}

function copyStringField(request: Bytes, tag: i32, out: Output): void {
  if (stringField(request, tag) > 0) writeStringBytes(out, tag, request, fieldStrAt, fieldStrLen);
  else writeString(out, tag, "");
}

function resultCode(kind: i32): i32 {
  if (kind == ERR_ROUTE_NOT_FOUND || kind == ERR_CLUSTER_NOT_FOUND) return TARSSERVERNOSERVANTERR;
  if (kind == ERR_TIMEOUT) return TARSINVOKETIMEOUT;
  if (kind == ERR_OVER_LIMIT) return TARSSERVEROVERLOAD;
  if (kind == ERR_NO_HEALTHY_UPSTREAM) return TARSADAPTERNULL;
  if (kind == ERR_CONNECT_FAILURE || kind == ERR_UPSTREAM_CLOSED) return TARSPROXYCONNECTERR;
  if (kind == ERR_PROTOCOL_ERROR) return TARSSERVERDECODEERR;
  if (kind == ERR_PERMISSION_DENIED) return TARSSERVERUNKNOWNERR;
  return TARSSERVERUNKNOWNERR;
}

const codec = new TarsCodec();
function make(): Codec { return codec; }
registerCodec(new CodecInfo("tars", "tars", "1.0.0", Correlation.RequestId, true), make);
