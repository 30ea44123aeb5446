// The ZooKeeper codec (the client protocol of ZooKeeper 3.x, jute-encoded, length-prefixed): a
// ZooKeeper session lives on one server connection — its ephemeral nodes, its watches, the order
// of its requests — so the codec declares a bound session (ABI 1.2). The client's ConnectRequest
// is the session's routing frame and its ConnectResponse is relayed; then every request gives
// `command` (its opcode) and `path`; replies are matched by order and checked against the xid of
// the request they answer; watch events (xid -1) go to the session's client as they come.

import {
  Bytes, Codec, CodecInfo, Correlation, Frame, Output, registerCodec, Session,
  ERR_CONNECT_FAILURE, ERR_NO_HEALTHY_UPSTREAM, ERR_OVER_LIMIT, ERR_PERMISSION_DENIED, ERR_PROTOCOL_ERROR, ERR_TIMEOUT, ERR_UPSTREAM_CLOSED,
  FRAME_DRAIN_CLOSE, FRAME_ROUTE, FRAME_UNSOLICITED, KEY_COMMAND, MSG_RESPONSE, RESPONSE_ERROR, STATUS_OK, STATUS_PROTOCOL_ERROR,
} from "../../sdk/assembly";
import { OP_AUTH, OP_CLOSE_SESSION, OP_MULTI, OP_MULTI_READ, hasPath, opName } from "./opcodes";

export * from "../../sdk/assembly/exports";

// Session byte 0: where the connection is.
const PHASE_NEW: u8 = 0;        // the next client packet is the ConnectRequest
const PHASE_CONNECTING: u8 = 1; // the ConnectRequest went; its ConnectResponse has not come back
const PHASE_OPEN: u8 = 2;       // the server answered the ConnectRequest
const B_PHASE = 0;

/** `expect` of the ConnectRequest. A request's is its xid + 1 (so 0 stays "none waits"). */
const EXPECT_CONNECT: u32 = <u32>i32.MIN_VALUE + 1;
const NOTIFICATION_XID: i32 = -1;

// Sizes of the fixed parts (after the 4-byte length).
const CONNECT_REQUEST_MIN = 4 + 8 + 4 + 8 + 4; // protocolVersion, lastZxidSeen, timeOut, sessionId, passwd length
const CONNECT_RESPONSE_MIN = 4 + 4 + 8 + 4;    // protocolVersion, timeOut, sessionId, passwd length
const REQUEST_HEADER = 8;                      // xid, type
const REPLY_HEADER = 16;                       // xid, zxid, err

// KeeperException codes a local reply uses.
const ZSYSTEMERROR: i32 = -1;
const ZCONNECTIONLOSS: i32 = -4;
const ZMARSHALLINGERROR: i32 = -5;
const ZOPERATIONTIMEOUT: i32 = -7;
const ZNOAUTH: i32 = -102;
const ZTHROTTLEDOP: i32 = -127;

function fail(frame: Frame, message: string): i32 {
  frame.fail(message);
  return STATUS_PROTOCOL_ERROR;
}

/**
 * The packet at the start of `input`: its whole length, 0 when more bytes are needed (`need` set),
 * or -1 when its length field is negative.
 */
let need: i32 = 0;
function packetEnd(input: Bytes): i32 {
  need = 4;
  if (input.length < 4) return 0;
  const len = input.i32be(0);
  if (len < 0) return -1;
  need = len > i32.MAX_VALUE - 4 ? i32.MAX_VALUE : len + 4;
  return input.length >= need ? need : 0;
}

/** A jute string at `at` within [0, end): its end, or -1. Sets `strAt`/`strLen` (-1 for null). */
let strAt: i32 = 0;
let strLen: i32 = 0;
function readString(b: Bytes, at: i32, end: i32): i32 {
  if (at + 4 > end) return -1;
  const len = b.i32be(at);
  strAt = at + 4;
  strLen = len;
  if (len == -1) return at + 4;
  if (len < 0 || len > end - at - 4) return -1;
  return at + 4 + len;
}

class ZooKeeperCodec extends Codec {
  decode(input: Bytes, frame: Frame, upstream: bool): i32 {
    if (!upstream && Session.byte(B_PHASE) == PHASE_NEW && input.length >= 4 && isFourLetterWord(input)) {
      return fail(frame, "four-letter words (ruok, stat, mntr …) are not proxied: ask each server's own port or its admin server");
    }
    const end = packetEnd(input);
    if (end < 0) return fail(frame, "negative packet length");
    if (end == 0) { frame.needBytes = need; return 0; }
    return upstream ? this.reply(input, end, frame) : this.request(input, end, frame);
  }

  // ---- client → server ---------------------------------------------------------------------

  private request(input: Bytes, end: i32, frame: Frame): i32 {
    if (Session.byte(B_PHASE) == PHASE_NEW) return this.connect(input, end, frame);
    if (end < 4 + REQUEST_HEADER) return fail(frame, "request shorter than its header");
    const xid = input.i32be(4);
    const op = input.i32be(8);
    // Both would collide with what the proxy reads back: -1 is the server's (watch events), and
    // the smallest int stands for the ConnectRequest in `expect`.
    if (xid == NOTIFICATION_XID || xid == i32.MIN_VALUE) return fail(frame, "xid " + xid.toString() + " is reserved");
    frame.putString(KEY_COMMAND, opName(op));
    frame.expect = <u32>xid + 1;
    if (op == OP_CLOSE_SESSION) frame.flags |= FRAME_DRAIN_CLOSE;
    let pathAt = -1;
    if (hasPath(op)) pathAt = 12;
    else if (op == OP_MULTI || op == OP_MULTI_READ) {
      // MultiHeader (type, done, err) of the first op, then its body; done = the empty multi.
      if (end >= 12 + 9 && input.at(16) == 0 && hasPath(input.i32be(12))) pathAt = 21;
    } else if (op == OP_AUTH) {
      if (readString(input, 16, end) < 0) return fail(frame, "auth packet: bad scheme");
      if (strLen > 0) frame.putNamedRef("scheme", strAt, strLen);
    }
    if (pathAt > 0) {
      if (readString(input, pathAt, end) < 0) return fail(frame, opName(op) + ": path length past the packet's end");
      if (strLen > 0) frame.putNamedRef("path", strAt, strLen);
    }
    return end;
  }

  private connect(input: Bytes, end: i32, frame: Frame): i32 {
    if (end < 4 + CONNECT_REQUEST_MIN) return fail(frame, "ConnectRequest shorter than its fields");
    if (readString(input, 28, end) < 0 || strLen < 0) return fail(frame, "ConnectRequest: bad passwd length");
    frame.putString(KEY_COMMAND, "connect");
    const session = input.i64be(20);
    if (session != 0) frame.putNamed("session_id", "0x" + (<u64>session).toString(16));
    frame.flags |= FRAME_ROUTE;
    frame.expect = EXPECT_CONNECT;
    Session.setByte(B_PHASE, PHASE_CONNECTING);
    return end;
  }

  // ---- server → client ---------------------------------------------------------------------

  private reply(input: Bytes, end: i32, frame: Frame): i32 {
    frame.messageType = MSG_RESPONSE;
    const expect = Session.expected();
    if (expect == EXPECT_CONNECT) {
      if (end < 4 + CONNECT_RESPONSE_MIN) return fail(frame, "ConnectResponse shorter than its fields");
      if (readString(input, 20, end) < 0) return fail(frame, "ConnectResponse: bad passwd length");
      frame.putString(KEY_COMMAND, "connect");
      // A session the server will not (re)open: it answers timeOut 0 and closes.
      if (input.i64be(12) == 0 || input.i32be(8) <= 0) frame.status = RESPONSE_ERROR;
      Session.setByte(B_PHASE, PHASE_OPEN);
      return end;
    }
    if (end < 4 + REPLY_HEADER) return fail(frame, "reply shorter than its header");
    const xid = input.i32be(4);
    if (xid == NOTIFICATION_XID) {
      // WatcherEvent: type, state, path.
      frame.flags |= FRAME_UNSOLICITED;
      frame.putString(KEY_COMMAND, "notification");
      if (end >= 4 + REPLY_HEADER + 8 && readString(input, 28, end) > 0 && strLen > 0) frame.putNamedRef("path", strAt, strLen);
      return end;
    }
    if (expect == 0) return fail(frame, "a reply with xid " + xid.toString() + " while no request waits");
    const wanted = <i32>(expect - 1);
    if (xid != wanted) return fail(frame, "a reply with xid " + xid.toString() + " where the oldest request in flight has xid " + wanted.toString());
    if (input.i32be(16) != 0) frame.status = RESPONSE_ERROR;
    return end;
  }

  // ---- replies made here -------------------------------------------------------------------

  localReply(request: Bytes, kind: i32, message: Bytes, out: Output): i32 {
    // Until the server answered the ConnectRequest, the client reads nothing but a ConnectResponse:
    // a failure there closes the connection without a word, as a server that cannot take it does.
    if (Session.byte(B_PHASE) != PHASE_OPEN || request.length < 4 + REQUEST_HEADER) return STATUS_OK;
    // A reply with xid -1 would be read as a watch event.
    if (request.i32be(4) == NOTIFICATION_XID) return STATUS_OK;
    out.u32be(REPLY_HEADER).u32be(request.u32be(4)).u64be(0).u32be(<u32>errorCode(kind));
    return STATUS_OK;
  }
}

function errorCode(kind: i32): i32 {
  if (kind == ERR_PERMISSION_DENIED) return ZNOAUTH;
  if (kind == ERR_TIMEOUT) return ZOPERATIONTIMEOUT;
  if (kind == ERR_OVER_LIMIT) return ZTHROTTLEDOP;
  if (kind == ERR_PROTOCOL_ERROR) return ZMARSHALLINGERROR;
  if (kind == ERR_NO_HEALTHY_UPSTREAM || kind == ERR_CONNECT_FAILURE || kind == ERR_UPSTREAM_CLOSED) return ZCONNECTIONLOSS;
  return ZSYSTEMERROR;
}

/** Whether the first 4 bytes are lowercase letters: a four-letter word, never a length below 1.9 GB. */
function isFourLetterWord(b: Bytes): bool {
  for (let i = 0; i < 4; i++) {
    const c = b.at(i);
    if (c < 0x61 || c > 0x7a) return false;
  }
  return true;
}

const codec = new ZooKeeperCodec();
function make(): Codec { return codec; }
registerCodec(new CodecInfo("zookeeper", "zookeeper", "1.0.0", Correlation.Order, true, false, true), make);
