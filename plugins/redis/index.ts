// The Redis codec: RESP2/RESP3 requests (arrays of bulk strings, inline commands) and replies.
// Metadata: `command` (upper-cased) and `key` (the first key). Local replies are `-ERR …`.

import {
  Bytes, Codec, CodecInfo, Correlation, Frame, Output, registerCodec,
  FRAME_BLOCKING, FRAME_CONNECTION_SCOPED, FRAME_DRAIN_CLOSE, FRAME_IDEMPOTENT, KEY_COMMAND, KEY_KEY, MSG_RESPONSE, RESPONSE_ERROR,
  STATUS_FRAME_TOO_LARGE, STATUS_OK, STATUS_PROTOCOL_ERROR,
} from "../../sdk/assembly";
import { ERR_TOO_LARGE, MAX_BULK, MAX_LINE, NEED, errorText, frameReply, lineEnd, needTotal, respInteger } from "./resp";
import { INLINE_ERROR, INLINE_NUL, tokAt, tokLen, tokenize } from "./inline";
import { BLOCKS, CONNECTION_SCOPED, KEYLESS, PUSHES, QUIT, READ_ONLY, SCRIPT, XREAD, classify } from "./commands";

export * from "../../sdk/assembly/exports";

/** Most arguments in one command, as redis-server (1024*1024*1024 would be its hard limit). */
const MAX_ARGS: i64 = 1024 * 1024;

// Positions of the arguments the metadata needs, filled while framing a request.
const ARG_SLOTS = 4;
const argAt = new StaticArray<i32>(ARG_SLOTS);
const argLen = new StaticArray<i32>(ARG_SLOTS);
let streamsKeyAt: i32 = -1;
let streamsKeyLen: i32 = 0;
let sawStreams = false;
let sawBlock = false;
/** classify() of the command, computed once while framing (-1: not yet). */
let commandFlags: i32 = -1;

const PUSHES_REFUSED = "pub/sub and MONITOR are not supported through meltemi (their messages would not reach you); connect to the server for them";

function fail(frame: Frame, status: i32, message: string): i32 {
  frame.fail(message);
  return status;
}

function isUpper(b: Bytes, at: i32, len: i32): bool {
  for (let i = 0; i < len; i++) if (<u32>b.at(at + i) - 97 < 26) return false;
  return true;
}

function errorStatus(code: i32): i32 {
  return code == ERR_TOO_LARGE ? STATUS_FRAME_TOO_LARGE : STATUS_PROTOCOL_ERROR;
}

class RedisCodec extends Codec {
  decode(input: Bytes, frame: Frame, upstream: bool): i32 {
    return upstream ? this.decodeReply(input, frame) : this.decodeRequest(input, frame);
  }

  private decodeReply(input: Bytes, frame: Frame): i32 {
    const end = frameReply(input, 0);
    if (end < 0) return fail(frame, errorStatus(end), errorText);
    if (end == NEED) { frame.needBytes = needTotal; return 0; }
    frame.messageType = MSG_RESPONSE;
    const t = input.at(0);
    if (t == 45 /* - */ || t == 33 /* ! */) frame.status = RESPONSE_ERROR;
    return end;
  }

  private decodeRequest(input: Bytes, frame: Frame): i32 {
    // Framing follows redis-server exactly, because a shared upstream connection is only as
    // correct as the agreement between our frame count and the server's reply count. The first
    // byte decides the request type. Requests the server answers with nothing (`*0`, `*-1`,
    // lines of blanks) are glued onto the next command, so every frame gets exactly one reply.
    let start = 0;
    for (let i = 0; i < ARG_SLOTS; i++) { unchecked(argAt[i] = -1); unchecked(argLen[i] = 0); }
    sawStreams = false;
    sawBlock = false;
    streamsKeyAt = -1;
    commandFlags = -1;
    while (true) {
      if (start >= input.length) return start > MAX_LINE ? fail(frame, STATUS_PROTOCOL_ERROR, "too many empty commands") : 0;
      if (input.at(start) == 42 /* * */) {
        const eol = lineEnd(input, start + 1);
        if (eol < 0) return fail(frame, errorStatus(eol), errorText);
        if (eol == NEED) return 0;
        const n = respInteger(input, start + 1, eol);
        if (n == i64.MIN_VALUE || n > MAX_ARGS) return fail(frame, STATUS_PROTOCOL_ERROR, "invalid multibulk length");
        if (n <= 0) { start = eol + 2; continue; }
        const end = this.frameMultibulk(input, eol + 2, n, frame);
        if (end <= 0) return end;
        if (!this.describe(input, frame)) return fail(frame, STATUS_PROTOCOL_ERROR, PUSHES_REFUSED);
        return end;
      }
      const nl = input.indexOf(10, start);
      if (nl < 0) {
        if (input.length - start > MAX_LINE) return fail(frame, STATUS_PROTOCOL_ERROR, "too big inline request");
        return 0;
      }
      const lineTo = nl > start && input.at(nl - 1) == 13 ? nl - 1 : nl;
      const count = tokenize(input, start, lineTo);
      if (count == INLINE_ERROR) return fail(frame, STATUS_PROTOCOL_ERROR, "unbalanced quotes in request");
      if (count == INLINE_NUL) return fail(frame, STATUS_PROTOCOL_ERROR, "NUL byte in an inline request");
      if (count == 0) { start = nl + 1; continue; }
      const slots = count < ARG_SLOTS ? count : ARG_SLOTS;
      for (let i = 0; i < slots; i++) this.noteArg(input, i, unchecked(tokAt[i]), unchecked(tokLen[i]), false);
      if (!this.describe(input, frame)) return fail(frame, STATUS_PROTOCOL_ERROR, PUSHES_REFUSED);
      return nl + 1;
    }
  }

  private noteArg(input: Bytes, index: i64, at: i32, len: i32, xread: bool): void {
    if (index < ARG_SLOTS) { unchecked(argAt[<i32>index] = at); unchecked(argLen[<i32>index] = len); }
    if (index == 0 || !xread) return;
    if (sawStreams && streamsKeyAt < 0) { streamsKeyAt = at; streamsKeyLen = len; }
    if (input.equalsLower(at, len, "streams")) sawStreams = true;
    else if (input.equalsLower(at, len, "block")) sawBlock = true;
  }

  private frameMultibulk(input: Bytes, pos: i32, n: i64, frame: Frame): i32 {
    let scanXread = false;
    for (let i: i64 = 0; i < n; i++) {
      if (pos >= input.length) return 0;
      if (input.at(pos) != 36 /* $ */) return fail(frame, STATUS_PROTOCOL_ERROR, "expected '$', got '" + String.fromCharCode(input.at(pos)) + "'");
      const le = lineEnd(input, pos + 1);
      if (le < 0) return fail(frame, errorStatus(le), errorText);
      if (le == NEED) return 0;
      const len = respInteger(input, pos + 1, le);
      if (len < 0) return fail(frame, STATUS_PROTOCOL_ERROR, "invalid bulk length");
      if (len > MAX_BULK) return fail(frame, STATUS_FRAME_TOO_LARGE, "bulk length exceeds 512 MB");
      const dataAt = le + 2;
      const next = <i64>dataAt + len + 2;
      if (next > <i64>input.length) { frame.needBytes = <i32>next; return 0; }
      if (input.at(<i32>next - 2) != 13 || input.at(<i32>next - 1) != 10) return fail(frame, STATUS_PROTOCOL_ERROR, "bulk not terminated by CRLF");
      if (i < ARG_SLOTS || scanXread) this.noteArg(input, i, dataAt, <i32>len, scanXread);
      if (i == 0) {
        commandFlags = <i32>classify(input, dataAt, <i32>len);
        scanXread = (commandFlags & XREAD) != 0;
      }
      pos = <i32>next;
    }
    return pos;
  }

  /**
   * Puts `command` and `key`, and flags connection-scoped commands. False for a command that
   * turns the connection into a stream of pushes (SUBSCRIBE, MONITOR): the server's messages
   * would come with no request to answer, so the client is told and its connection closed
   * rather than left subscribed to nothing.
   */
  private describe(input: Bytes, frame: Frame): bool {
    const cmdAt = unchecked(argAt[0]);
    if (cmdAt < 0) return true;
    const cmdLen = unchecked(argLen[0]);
    if (isUpper(input, cmdAt, cmdLen)) frame.putRef(KEY_COMMAND, cmdAt, cmdLen);
    else frame.putRefUppercase(KEY_COMMAND, input, cmdAt, cmdLen);
    const kind = <u8>(commandFlags >= 0 ? commandFlags : classify(input, cmdAt, cmdLen));
    if (kind & PUSHES) return false;
    if ((kind & CONNECTION_SCOPED) != 0 || ((kind & XREAD) != 0 && sawBlock)) frame.flags |= FRAME_CONNECTION_SCOPED;
    if (kind & QUIT) frame.flags |= FRAME_DRAIN_CLOSE;
    if (kind & READ_ONLY) frame.flags |= FRAME_IDEMPOTENT;
    if ((kind & BLOCKS) != 0 || ((kind & XREAD) != 0 && sawBlock)) frame.flags |= FRAME_BLOCKING;
    if (kind & KEYLESS) return true;
    if (kind & XREAD) {
      if (streamsKeyAt >= 0) frame.putRef(KEY_KEY, streamsKeyAt, streamsKeyLen);
      return true;
    }
    if (kind & SCRIPT) {
      // EVAL script numkeys key…: a key only when numkeys > 0.
      const nkAt = unchecked(argAt[2]);
      if (nkAt >= 0 && unchecked(argAt[3]) >= 0 && input.decimal(nkAt, nkAt + unchecked(argLen[2])) > 0) {
        frame.putRef(KEY_KEY, unchecked(argAt[3]), unchecked(argLen[3]));
      }
      return true;
    }
    if (unchecked(argAt[1]) >= 0) frame.putRef(KEY_KEY, unchecked(argAt[1]), unchecked(argLen[1]));
    return true;
  }

  localReply(request: Bytes, kind: i32, message: Bytes, out: Output): i32 {
    out.string("-ERR ");
    // A reply line must not contain CR or LF.
    for (let i = 0; i < message.length; i++) {
      const c = message.at(i);
      out.u8(c == 13 || c == 10 ? 32 : c);
    }
    out.string("\r\n");
    return STATUS_OK;
  }
}

const codec = new RedisCodec();
function makeCodec(): Codec { return codec; }

registerCodec(new CodecInfo("redis", "redis", "1.0.0", Correlation.Order, true), makeCodec);
