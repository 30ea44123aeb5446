// The codec exports of ABI v1 (ABI.md §1, §3, §4). A codec's entry file re-exports this module:
//   export * from "<sdk>/assembly/exports";
// Everything here is numbers in, numbers out; bytes move through IN, OUT and the control block.

import { Bytes } from "./bytes";
import { Codec, Correlation } from "./codec";
import { Frame } from "./metadata";
import { Mutation } from "./mutation";
import { registeredFactory, registeredInfo } from "./registry";
import {
  ENCODE_SIDE_UPSTREAM, FRAME_PARTIAL, FRAME_UNSOLICITED, MSG_ERROR, MSG_REQUEST, MSG_RESPONSE, REBIND_CLIENT_ANSWER,
  STATUS_BAD_ARGUMENT, STATUS_INTERNAL, STATUS_OK, STATUS_UNKNOWN_CONTEXT, STATUS_UNSUPPORTED,
  SIDE_UPSTREAM,
} from "./abi";
import { CTRL, C_CONSUMED, C_FRAME_COUNT, C_NEED, align8, beginCall, fail, finishCall, inCap, inPtr, jsonString, out } from "./host-io";

const frame = new Frame(out);
const mutation = new Mutation();
const input = new Bytes();
const aux = new Bytes();
const contexts = new Map<i32, Codec>();
const upstreamContexts = new Set<i32>();

export { meltemi_abi_v1, meltemi_ctrl, meltemi_in_reserve } from "./host-io";

export function meltemi_info(): i32 {
  beginCall();
  const info = registeredInfo;
  if (info === null) return fail(STATUS_INTERNAL, "no codec registered: call registerCodec() at the top level");
  out.string('{"abi_minor":').decimal(info.abiMinor).string(',"kind":"codec","name":');
  jsonString(out, info.name);
  out.string(',"protocol":');
  jsonString(out, info.protocol);
  out.string(',"version":');
  jsonString(out, info.version);
  out.string(',"correlation":');
  out.string(info.correlation == Correlation.RequestId ? '"request_id"' : '"order"');
  out.string(',"passthrough_encode":').string(info.passthroughEncode ? "true" : "false");
  if (info.abiMinor >= 2) {
    out.string(',"server_first":').string(info.serverFirst ? "true" : "false");
    out.string(',"bind_upstream":').string(info.serverFirst || info.bindUpstream ? "true" : "false");
  }
  if (info.abiMinor >= 3) out.string(',"expect_responses":').string(info.expectResponses ? "true" : "false");
  out.string("}");
  return finishCall(STATUS_OK);
}

export function meltemi_context_new(ctx: i32, flags: i32, cfgLen: i32): i32 {
  beginCall();
  const factory = registeredFactory;
  if (factory === null) return fail(STATUS_INTERNAL, "no codec registered");
  if (cfgLen < 0 || cfgLen > inCap()) return fail(STATUS_BAD_ARGUMENT, "cfg_len out of range");
  const codec = factory();
  codec.configure(aux.reset(inPtr(), cfgLen));
  if (codec.configError.length > 0) return fail(STATUS_BAD_ARGUMENT, codec.configError);
  contexts.set(ctx, codec);
  if (flags & SIDE_UPSTREAM) upstreamContexts.add(ctx); else upstreamContexts.delete(ctx);
  return finishCall(STATUS_OK);
}

export function meltemi_context_free(ctx: i32): i32 {
  beginCall();
  if (!contexts.has(ctx)) return fail(STATUS_UNKNOWN_CONTEXT, "unknown context");
  contexts.delete(ctx);
  upstreamContexts.delete(ctx);
  return finishCall(STATUS_OK);
}

export function meltemi_decode(ctx: i32, inLen: i32, flags: i32): i32 {
  beginCall();
  if (!contexts.has(ctx)) return fail(STATUS_UNKNOWN_CONTEXT, "unknown context");
  if (inLen < 0 || inLen > inCap()) return fail(STATUS_BAD_ARGUMENT, "in_len out of range");
  const codec = contexts.get(ctx);
  const upstream = (flags & SIDE_UPSTREAM) != 0;
  const presetType = upstream ? MSG_RESPONSE : MSG_REQUEST;
  const base = inPtr();
  let off = 0;
  let count = 0;
  let status = STATUS_OK;
  // ABI 1.2/1.3: a codec that reads `expect` (a bound session, or expect_responses) stops after
  // each whole response, so the host can hand over the `expect` word of the next one.
  let stopAfterResponse = false;
  const info = registeredInfo;
  if (upstream && info !== null) stopAfterResponse = info.bindUpstream || info.serverFirst || info.expectResponses;
  while (off < inLen) {
    frame.begin(off, presetType);
    const n = codec.decode(input.reset(base + <usize>off, inLen - off), frame, upstream);
    if (n > 0) {
      if (n > inLen - off) {
        frame.abandon();
        status = STATUS_INTERNAL;
        frame.fail("codec claimed a frame longer than its input");
        break;
      }
      frame.finish(n);
      off += n;
      count++;
      if (stopAfterResponse && (frame.messageType == MSG_RESPONSE || frame.messageType == MSG_ERROR)
        && (frame.flags & (FRAME_PARTIAL | FRAME_UNSOLICITED)) == 0) break;
    } else {
      frame.abandon();
      if (n == 0) {
        if (frame.needBytes > 0) store<u32>(CTRL + C_NEED, <u32>(off + frame.needBytes));
      } else {
        status = n;
      }
      break;
    }
  }
  store<u32>(CTRL + C_CONSUMED, <u32>off);
  store<u32>(CTRL + C_FRAME_COUNT, <u32>count);
  if (status < 0) {
    return fail(status, frame.errorMessage.length > 0 ? frame.errorMessage : "malformed frame");
  }
  return finishCall(STATUS_OK);
}

export function meltemi_encode(ctx: i32, frameLen: i32, mutLen: i32, flags: i32): i32 {
  beginCall();
  if (!contexts.has(ctx)) return fail(STATUS_UNKNOWN_CONTEXT, "unknown context");
  if (frameLen < 0 || mutLen < 0 || align8(frameLen) + mutLen > inCap()) {
    return fail(STATUS_BAD_ARGUMENT, "frame_len/mut_len out of range");
  }
  const base = inPtr();
  if (!mutation.bind(base + <usize>align8(frameLen), mutLen)) return fail(STATUS_BAD_ARGUMENT, "malformed mutation buffer");
  const codec = contexts.get(ctx);
  const status = codec.encode(input.reset(base, frameLen), <u8>(flags & 0xff), (flags & ENCODE_SIDE_UPSTREAM) != 0, mutation, out);
  return finishCall(status);
}

export function meltemi_local_reply(ctx: i32, frameLen: i32, kind: i32, msgLen: i32, flags: i32): i32 {
  beginCall();
  if (!contexts.has(ctx)) return fail(STATUS_UNKNOWN_CONTEXT, "unknown context");
  if (frameLen < 0 || msgLen < 0 || align8(frameLen) + msgLen > inCap()) {
    return fail(STATUS_BAD_ARGUMENT, "frame_len/msg_len out of range");
  }
  const base = inPtr();
  const codec = contexts.get(ctx);
  const status = codec.localReply(input.reset(base, frameLen), kind, aux.reset(base + <usize>align8(frameLen), msgLen), out);
  return status < 0 ? fail(status, "codec could not build a local reply") : finishCall(status);
}

export function meltemi_heartbeat_reply(ctx: i32, frameLen: i32, flags: i32): i32 {
  beginCall();
  if (!contexts.has(ctx)) return fail(STATUS_UNKNOWN_CONTEXT, "unknown context");
  if (frameLen < 0 || frameLen > inCap()) return fail(STATUS_BAD_ARGUMENT, "frame_len out of range");
  const codec = contexts.get(ctx);
  return finishCall(codec.heartbeatReply(input.reset(inPtr(), frameLen), out));
}

export function meltemi_rebind(ctx: i32, greetingLen: i32, loginLen: i32, answerLen: i32, flags: i32): i32 {
  beginCall();
  if (!contexts.has(ctx)) return fail(STATUS_UNKNOWN_CONTEXT, "unknown context");
  const loginAt = align8(greetingLen);
  const answerAt = align8(loginAt + loginLen);
  if (greetingLen < 0 || loginLen < 0 || answerLen < 0 || answerAt + answerLen > inCap()) {
    return fail(STATUS_BAD_ARGUMENT, "greeting_len/login_len/answer_len out of range");
  }
  const base = inPtr();
  const greeting = new Bytes(base, greetingLen);
  const login = new Bytes(base + <usize>loginAt, loginLen);
  const answer = (flags & REBIND_CLIENT_ANSWER) != 0 ? new Bytes(base + <usize>answerAt, answerLen) : null;
  const status = contexts.get(ctx).rebind(greeting, login, answer, out);
  return status < 0 && status != STATUS_UNSUPPORTED ? fail(status, "codec could not rebind the session") : finishCall(status);
}
