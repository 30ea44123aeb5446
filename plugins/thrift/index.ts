// The Thrift codec: binary and compact protocols over framed or unframed transports, detected
// from each message's first bytes; TMultiplexedProtocol names ("Service:method"). Metadata:
// `method`, `service` (multiplexed only). The seqid is the request id and is rewritten on encode
// (compact varints may change length, so the frame is rebuilt). Local replies are
// TApplicationExceptions in the request's own transport and protocol.

import {
  Bytes, Codec, CodecInfo, Correlation, Frame, Mutation, Output, registerCodec,
  ERR_PROTOCOL_ERROR, ERR_ROUTE_NOT_FOUND, FRAME_HAS_REQUEST_ID, KEY_METHOD, KEY_SERVICE,
  MSG_ONEWAY, MSG_REQUEST, MSG_RESPONSE, RESPONSE_ERROR, STATUS_FRAME_TOO_LARGE, STATUS_OK,
  STATUS_PROTOCOL_ERROR, STATUS_UNCHANGED,
} from "../../sdk/assembly";
import { BAD, NEED, readVarint, skipError, skipStruct, varintEnd } from "./skip";

export * from "../../sdk/assembly/exports";

const CALL: u8 = 1, REPLY: u8 = 2, EXCEPTION: u8 = 3, ONEWAY: u8 = 4;
const MAX_FRAME: u32 = 0x7fffffff;
// TApplicationException types.
const TAE_UNKNOWN_METHOD = 1, TAE_INTERNAL_ERROR = 6, TAE_PROTOCOL_ERROR = 7;

/** What the header of one message says; filled by `parseHeader`. */
class Header {
  framed: bool = false;
  compact: bool = false;
  /** Offset of the message (after the frame length, if any). */
  msgAt: i32 = 0;
  type: u8 = 0;
  nameAt: i32 = 0;
  nameLen: i32 = 0;
  seqid: u32 = 0;
  /** Binary: offset of the 4-byte seqid. Compact: offset of the seqid varint. */
  seqAt: i32 = 0;
  /** Compact: offset just after the seqid varint. */
  seqEnd: i32 = 0;
  bodyAt: i32 = 0;
  error: string = "";
}

const header = new Header();

/** Parses the message header at `at`. Returns 1, NEED, or BAD (`header.error`). */
function parseHeader(b: Bytes, at: i32, h: Header): i32 {
  h.msgAt = at;
  if (at + 2 > b.length) return NEED;
  const b0 = b.at(at);
  if (b0 == 0x80) {
    if (b.at(at + 1) != 0x01) { h.error = "unsupported binary protocol version"; return BAD; }
    if (at + 8 > b.length) return NEED;
    h.compact = false;
    h.type = b.at(at + 3) & 0x07;
    const n = b.i32be(at + 4);
    if (n < 0) { h.error = "negative method name length"; return BAD; }
    if (<i64>at + 12 + <i64>n > <i64>b.length) return NEED;
    h.nameAt = at + 8;
    h.nameLen = n;
    h.seqAt = at + 8 + n;
    h.seqid = b.u32be(h.seqAt);
    h.bodyAt = h.seqAt + 4;
    return 1;
  }
  if (b0 == 0x82) {
    const tv = b.at(at + 1);
    if ((tv & 0x1f) != 1) { h.error = "unsupported compact protocol version"; return BAD; }
    h.compact = true;
    h.type = (tv >> 5) & 0x07;
    h.seqAt = at + 2;
    const seq = readVarint(b, h.seqAt);
    if (seq == -1) return NEED;
    if (seq < 0 || seq > 0xffffffff) { h.error = "bad seqid varint"; return BAD; }
    h.seqid = <u32>seq;
    h.seqEnd = varintEnd;
    const n = readVarint(b, h.seqEnd);
    if (n == -1) return NEED;
    if (n < 0 || n > 0x7fffffff) { h.error = "bad method name length"; return BAD; }
    h.nameAt = varintEnd;
    h.nameLen = <i32>n;
    if (<i64>h.nameAt + n > <i64>b.length) return NEED;
    h.bodyAt = h.nameAt + h.nameLen;
    return 1;
  }
  h.error = "not a Thrift binary or compact message (first byte 0x" + b0.toString(16) + ")";
  return BAD;
}

/** Whether the first field of the result struct at `at` is a declared exception (id != 0). */
function replyIsException(b: Bytes, at: i32, compact: bool): bool {
  if (at >= b.length) return false;
  const h = b.at(at);
  if (h == 0) return false; // void success
  if (!compact) return at + 3 <= b.length && b.u16be(at + 1) != 0;
  const delta = h >> 4;
  if (delta != 0) return true; // first field: id = delta from 0, so non-zero
  const z = readVarint(b, at + 1);
  return z > 0; // zigzag 0 is id 0
}

function writeVarint(out: Output, v: u64): void {
  while (v >= 0x80) { out.u8(<u8>(v | 0x80)); v >>= 7; }
  out.u8(<u8>v);
}

class ThriftCodec extends Codec {
  decode(input: Bytes, frame: Frame, upstream: bool): i32 {
    if (input.length < 1) return 0;
    const b0 = input.at(0);
    let end: i32;
    const h = header;
    if (b0 == 0x80 || b0 == 0x82) {
      h.framed = false;
      const r = parseHeader(input, 0, h);
      if (r == BAD) { frame.fail(h.error); return STATUS_PROTOCOL_ERROR; }
      if (r == NEED) return 0;
      end = skipStruct(input, h.bodyAt, h.compact);
      if (end == BAD) { frame.fail("malformed struct: " + skipError); return STATUS_PROTOCOL_ERROR; }
      if (end == NEED) return 0;
    } else {
      if (input.length < 4) return 0;
      const len = input.u32be(0);
      if (len > MAX_FRAME) { frame.fail("frame length over 2 GiB"); return STATUS_FRAME_TOO_LARGE; }
      if (len < 2) { frame.fail("frame too short for a message"); return STATUS_PROTOCOL_ERROR; }
      if (<u64>input.length < <u64>len + 4) { frame.needBytes = <i32>len + 4; return 0; }
      end = <i32>len + 4;
      h.framed = true;
      // Parse inside the frame only: a header that does not fit is malformed, not incomplete.
      const inner = frameView.reset(input.ptr, end);
      const r = parseHeader(inner, 4, h);
      if (r != 1) { frame.fail(r == NEED ? "message header overruns its frame" : h.error); return STATUS_PROTOCOL_ERROR; }
    }
    switch (h.type) {
      case CALL: frame.messageType = MSG_REQUEST; break;
      case ONEWAY: frame.messageType = MSG_ONEWAY; break;
      case REPLY:
        frame.messageType = MSG_RESPONSE;
        if (replyIsException(boundView.reset(input.ptr, end), h.bodyAt, h.compact)) frame.status = RESPONSE_ERROR;
        break;
      case EXCEPTION: frame.messageType = MSG_RESPONSE; frame.status = RESPONSE_ERROR; break;
      default: frame.fail("unknown message type " + h.type.toString()); return STATUS_PROTOCOL_ERROR;
    }
    frame.requestId = <u64>h.seqid;
    frame.flags |= FRAME_HAS_REQUEST_ID;
    let colon = -1;
    for (let i = h.nameAt, e = h.nameAt + h.nameLen; i < e; i++) {
      if (input.at(i) == 58 /* : */) { colon = i; break; }
    }
    if (colon >= 0) {
      frame.putRef(KEY_SERVICE, h.nameAt, colon - h.nameAt);
      frame.putRef(KEY_METHOD, colon + 1, h.nameAt + h.nameLen - colon - 1);
    } else {
      frame.putRef(KEY_METHOD, h.nameAt, h.nameLen);
    }
    return end;
  }

  encode(input: Bytes, messageType: u8, upstream: bool, mutation: Mutation, out: Output): i32 {
    // Thrift messages carry no headers: only the seqid can change.
    if (!mutation.hasRequestId) return STATUS_UNCHANGED;
    const h = header;
    const framed = input.at(0) != 0x80 && input.at(0) != 0x82;
    if (parseHeader(input, framed ? 4 : 0, h) != 1) return STATUS_PROTOCOL_ERROR;
    const seq = <u32>mutation.requestId;
    if (!h.compact) {
      out.bytes(input, 0, input.length);
      out.setU32be(h.seqAt, seq);
      return STATUS_OK;
    }
    if (framed) out.u32be(0);
    out.bytes(input, h.msgAt, 2);
    writeVarint(out, <u64>seq);
    out.bytes(input, h.seqEnd, input.length - h.seqEnd);
    if (framed) out.setU32be(0, <u32>(out.length - 4));
    return STATUS_OK;
  }

  localReply(request: Bytes, kind: i32, message: Bytes, out: Output): i32 {
    const h = header;
    let framed = true;
    let compact = false;
    let seq: u32 = 0;
    let nameAt = 0, nameLen = 0;
    if (request.length > 0) {
      framed = request.at(0) != 0x80 && request.at(0) != 0x82;
      if (parseHeader(request, framed ? 4 : 0, h) == 1) {
        compact = h.compact;
        seq = h.seqid;
        nameAt = h.nameAt;
        nameLen = h.nameLen;
      }
    }
    const type = kind == ERR_ROUTE_NOT_FOUND ? TAE_UNKNOWN_METHOD : kind == ERR_PROTOCOL_ERROR ? TAE_PROTOCOL_ERROR : TAE_INTERNAL_ERROR;
    if (framed) out.u32be(0);
    if (compact) {
      out.u8(0x82).u8((EXCEPTION << 5) | 1);
      writeVarint(out, <u64>seq);
      writeVarint(out, <u64>nameLen);
      out.bytes(request, nameAt, nameLen);
      out.u8(0x18); // field 1, binary
      writeVarint(out, <u64>message.length);
      out.bytes(message, 0, message.length);
      out.u8(0x15); // field 2, i32
      writeVarint(out, <u64>((type << 1) ^ (type >> 31)));
      out.u8(0); // stop
    } else {
      out.u8(0x80).u8(0x01).u8(0).u8(EXCEPTION);
      out.u32be(<u32>nameLen).bytes(request, nameAt, nameLen).u32be(seq);
      out.u8(11).u16be(1).u32be(<u32>message.length).bytes(message, 0, message.length);
      out.u8(8).u16be(2).u32be(<u32>type);
      out.u8(0);
    }
    if (framed) out.setU32be(0, <u32>(out.length - 4));
    return STATUS_OK;
  }
}

const frameView = new Bytes();
const boundView = new Bytes();
const codec = new ThriftCodec();
function make(): Codec { return codec; }
registerCodec(new CodecInfo("thrift", "thrift", "1.0.0", Correlation.RequestId, true), make);
