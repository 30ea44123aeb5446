// The Memcached codec: the text protocol (classic and meta commands) and the binary protocol, as
// memcached 1.6 speaks them. Metadata `command` and `key` (the first key: a multiget goes to the
// route of its first key). Requests the server answers with nothing (text `noreply`) are one-way;
// runs of quiet requests (binary GETQ/SETQ …, meta commands with `q`) travel as one frame with
// the request that ends them, so every frame gets exactly one answer and order correlation holds
// on shared upstream connections. Each request tells the response decoder what its answer looks
// like (ABI 1.3 `expect`), so a result is framed by what was asked, not guessed.

import {
  Bytes, Codec, CodecInfo, Correlation, Frame, Output, Session, registerCodec, parseJson, jsonError, JsonKind,
  ERR_CONNECT_FAILURE, ERR_NO_HEALTHY_UPSTREAM, ERR_OVER_LIMIT, ERR_PERMISSION_DENIED, ERR_PROTOCOL_ERROR, ERR_TIMEOUT, ERR_UPSTREAM_CLOSED,
  FRAME_CONNECTION_SCOPED, FRAME_DRAIN_CLOSE, FRAME_IDEMPOTENT, KEY_COMMAND, KEY_KEY, MSG_ONEWAY, MSG_RESPONSE, RESPONSE_ERROR,
  STATUS_OK, STATUS_PROTOCOL_ERROR,
} from "../../sdk/assembly";
import * as text from "./text";
import * as binary from "./binary";
import { EXPECT_BINARY, EXPECT_MN, C_QUIT, expectOf, isIdempotent } from "./commands";

export * from "../../sdk/assembly/exports";

/**
 * Most requests in one quiet run. A run is decoded again from its start each time more of it
 * arrives, so an endless one would cost time quadratic in its length; clients batch far fewer.
 */
const MAX_RUN: i32 = 4096;
/** Most bytes of a text quiet run (its lines are scanned on each decode; binary headers are not). */
const MAX_TEXT_RUN_BYTES: i32 = 1024 * 1024;
const RUN_TOO_LONG = "a run of quiet requests longer than 4096 requests (or 1 MiB of text): end it sooner (mn, or a non-quiet binary request such as NOOP)";

const MODE_AUTO: u8 = 0;
const MODE_TEXT: u8 = 1;
const MODE_BINARY: u8 = 2;

function fail(frame: Frame, message: string): i32 {
  frame.fail(message);
  return STATUS_PROTOCOL_ERROR;
}

class MemcachedCodec extends Codec {
  /** codec_config `protocol`: which protocol the listener's shared upstream connections speak. */
  private mode: u8 = MODE_AUTO;
  /** This client connection's protocol, fixed by its first request as memcached fixes it (0: none yet). */
  private spoken: u8 = 0;
  /** The header of the binary packet decode stopped at, so an error reply for it reaches its caller (-1: none). */
  private refusedOpcode: i32 = -1;
  private refusedOpaque: u32 = 0;

  configure(config: Bytes): void {
    if (config.length == 0) return;
    const root = parseJson(config);
    if (root === null) { this.configError = "codec_config is not JSON: " + jsonError; return; }
    const p = root.get("protocol");
    if (p === null) return;
    if (p.kind != JsonKind.String) { this.configError = "protocol must be \"auto\", \"text\" or \"binary\""; return; }
    if (p.str == "text") this.mode = MODE_TEXT;
    else if (p.str == "binary") this.mode = MODE_BINARY;
    else if (p.str != "auto") this.configError = "protocol must be \"auto\", \"text\" or \"binary\", not \"" + p.str + "\"";
  }

  decode(input: Bytes, frame: Frame, upstream: bool): i32 {
    if (upstream) return this.decodeResponse(input, frame);
    const isBinary = input.at(0) == binary.REQUEST_MAGIC;
    const proto = isBinary ? MODE_BINARY : MODE_TEXT;
    if (this.spoken == 0) this.spoken = proto;
    else if (this.spoken != proto) return fail(frame, "a connection speaks one protocol: this one began " + (this.spoken == MODE_BINARY ? "binary" : "text"));
    if (this.mode != MODE_AUTO && this.mode != proto) {
      return fail(frame, "this listener speaks the " + (this.mode == MODE_BINARY ? "binary" : "text") + " protocol (codec_config.protocol)");
    }
    const n = isBinary ? this.decodeBinaryRequest(input, frame) : this.decodeTextRequest(input, frame);
    // In auto mode the shared upstream connections speak text (memcached fixes a connection's
    // protocol on its first byte): a binary client gets connections of its own.
    if (n > 0 && isBinary && this.mode == MODE_AUTO) frame.flags |= FRAME_CONNECTION_SCOPED;
    return n;
  }

  private decodeTextRequest(input: Bytes, frame: Frame): i32 {
    let pos = 0;
    let run = false; // inside a run of quiet meta commands, which ends with mn
    let first = true;
    let count = 0;
    while (true) {
      if (run && (++count > MAX_RUN || pos > MAX_TEXT_RUN_BYTES)) return fail(frame, RUN_TOO_LONG);
      const end = text.frameCommand(input, pos);
      if (end == text.ERR) return fail(frame, text.errorText);
      if (end == text.NEED) {
        if (text.needTotal > 0) frame.needBytes = text.needTotal;
        return 0;
      }
      const c = text.command;
      if (first) {
        frame.putRefUppercase(KEY_COMMAND, input, text.cmdAt, text.cmdLen);
        if (text.keyAt >= 0) frame.putRef(KEY_KEY, text.keyAt, text.keyLen);
        if (isIdempotent(c)) frame.flags |= FRAME_IDEMPOTENT;
        frame.expect = expectOf(c);
        first = false;
      } else if (text.isQuitOrShutdown(c)) {
        // It would close (or stop) the upstream connection the run shares with other clients.
        return fail(frame, "quit or shutdown inside a run of quiet meta commands (end the run with mn first)");
      }
      pos = end;
      if (run) {
        if (text.isMn(c)) return pos;
        continue;
      }
      if (text.quiet) {
        run = true;
        frame.expect = EXPECT_MN;
        frame.flags &= ~FRAME_IDEMPOTENT;
        continue;
      }
      if (text.noreply) frame.messageType = MSG_ONEWAY;
      if (c == C_QUIT) {
        // The server closes the connection that reads quit: it must be this client's own.
        frame.messageType = MSG_ONEWAY;
        frame.flags |= FRAME_CONNECTION_SCOPED | FRAME_DRAIN_CLOSE;
      }
      return pos;
    }
  }

  private decodeBinaryRequest(input: Bytes, frame: Frame): i32 {
    let pos = 0;
    let count = 0;
    this.refusedOpcode = -1;
    while (true) {
      // The packet this call stops at, if it is refused (here, or by the host as too large).
      if (pos + binary.HEADER <= input.length) {
        this.refusedOpcode = input.at(pos + 1);
        this.refusedOpaque = input.u32be(pos + 12);
      }
      if (++count > MAX_RUN) return fail(frame, RUN_TOO_LONG);
      const end = binary.framePacket(input, pos, binary.REQUEST_MAGIC);
      if (end < 0) return fail(frame, binary.errorText);
      if (end == 0) {
        frame.needBytes = binary.needTotal;
        return 0;
      }
      const op = input.at(pos + 1);
      if (pos == 0) {
        frame.putString(KEY_COMMAND, binary.opcodeName(op));
        const kl = binary.keyLength(input, pos);
        if (kl > 0) frame.putRef(KEY_KEY, binary.keyOffset(input, pos), kl);
        if (binary.isIdempotentOp(op)) frame.flags |= FRAME_IDEMPOTENT;
        frame.expect = EXPECT_BINARY;
      } else if (!binary.isIdempotentOp(op)) {
        frame.flags &= ~FRAME_IDEMPOTENT;
      }
      pos = end;
      if (op == binary.OP_QUITQ) {
        frame.messageType = MSG_ONEWAY;
        frame.flags |= FRAME_CONNECTION_SCOPED | FRAME_DRAIN_CLOSE;
        return pos;
      }
      if (binary.isQuiet(op)) {
        if (pos >= input.length) { frame.needBytes = pos + binary.HEADER; return 0; }
        continue;
      }
      if (op == binary.OP_QUIT) frame.flags |= FRAME_CONNECTION_SCOPED | FRAME_DRAIN_CLOSE;
      // SASL authenticates the connection it arrives on.
      if (op >= binary.OP_SASL_LIST && op <= binary.OP_SASL_STEP) frame.flags |= FRAME_CONNECTION_SCOPED;
      return pos;
    }
  }

  private decodeResponse(input: Bytes, frame: Frame): i32 {
    const expect = Session.expected();
    const isBinary = input.at(0) == binary.RESPONSE_MAGIC;
    if (expect == EXPECT_BINARY && !isBinary) return fail(frame, "a text response to a binary request");
    if (expect != 0 && expect != EXPECT_BINARY && isBinary) return fail(frame, "a binary response to a text request");
    frame.messageType = MSG_RESPONSE;
    if (isBinary) {
      const n = binary.frameResponse(input);
      if (n < 0) return fail(frame, binary.errorText);
      if (n == 0) { frame.needBytes = binary.needTotal; return 0; }
      if (binary.responseError) frame.status = RESPONSE_ERROR;
      return n;
    }
    const n = text.frameResponse(input, expect);
    if (n < 0) return fail(frame, text.errorText);
    if (n == 0) { if (text.needTotal > 0) frame.needBytes = text.needTotal; return 0; }
    if (text.responseError) frame.status = RESPONSE_ERROR;
    return n;
  }

  localReply(request: Bytes, kind: i32, message: Bytes, out: Output): i32 {
    const isBinary = request.length > 0 ? request.at(0) == binary.REQUEST_MAGIC : this.spoken == MODE_BINARY;
    if (isBinary) return binaryReply(request, kind, message, out, this.refusedOpcode, this.refusedOpaque);
    out.string(kind == ERR_PROTOCOL_ERROR ? "CLIENT_ERROR " : "SERVER_ERROR ");
    // A reply line must not contain CR or LF.
    for (let i = 0; i < message.length; i++) {
      const ch = message.at(i);
      out.u8(ch == 13 || ch == 10 ? 32 : ch);
    }
    out.string("\r\n");
    // A run of quiet meta commands ends with mn, whose MN the client waits for.
    if (endsWithMn(request)) out.string("MN\r\n");
    return STATUS_OK;
  }
}

/** Whether the last command line of `request` is `mn`. */
function endsWithMn(request: Bytes): bool {
  let end = request.length;
  if (end > 0 && request.at(end - 1) == 10) end--;
  if (end > 0 && request.at(end - 1) == 13) end--;
  let start = end;
  while (start > 0 && request.at(start - 1) != 10) start--;
  while (start < end && request.at(start) == 32) start++;
  let to = start;
  while (to < end && request.at(to) != 32) to++;
  return request.equals(start, to - start, "mn");
}

/** A binary error answer to the request that ends `request`'s run (its opcode and opaque). */
function binaryReply(request: Bytes, kind: i32, message: Bytes, out: Output, refusedOpcode: i32, refusedOpaque: u32): i32 {
  let last = -1;
  let pos = 0;
  while (pos + binary.HEADER <= request.length) {
    last = pos;
    const next = <i64>pos + binary.HEADER + <i64>request.u32be(pos + 8);
    if (next > <i64>request.length) break;
    pos = <i32>next;
  }
  let status: u16 = 0x84; // internal error
  if (kind == ERR_PROTOCOL_ERROR) status = 0x04; // invalid arguments
  else if (kind == ERR_OVER_LIMIT) status = 0x85; // busy
  else if (kind == ERR_PERMISSION_DENIED) status = 0x20; // authentication error
  else if (kind == ERR_TIMEOUT || kind == ERR_NO_HEALTHY_UPSTREAM || kind == ERR_CONNECT_FAILURE || kind == ERR_UPSTREAM_CLOSED) status = 0x86; // temporary failure
  // No request: a packet decode refused, whose header we kept.
  const opcode = last >= 0 ? request.at(last + 1) : refusedOpcode >= 0 ? <u8>refusedOpcode : 0;
  const opaque = last >= 0 ? request.u32be(last + 12) : refusedOpcode >= 0 ? refusedOpaque : 0;
  out.u8(binary.RESPONSE_MAGIC);
  out.u8(opcode);
  out.u16be(0).u8(0).u8(0).u16be(status);
  out.u32be(<u32>message.length);
  out.u32be(opaque);
  out.u64be(0);
  out.bytes(message, 0, message.length);
  return STATUS_OK;
}

function makeCodec(): Codec { return new MemcachedCodec(); }

registerCodec(new CodecInfo("memcached", "memcached", "1.0.0", Correlation.Order, true, false, false, true), makeCodec);
