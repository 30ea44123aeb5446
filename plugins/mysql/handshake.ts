// The connection phase: the server's greeting (Protocol::HandshakeV10), the client's login
// (HandshakeResponse41) and, when the login routes to another server than the one that greeted,
// the auth switch that moves it there (meltemi_rebind).

import { Bytes, Output, STATUS_OK, STATUS_PROTOCOL_ERROR, STATUS_UNSUPPORTED } from "../../sdk/assembly";
import { header, lenenc, lenencSize, nulEnd, payloadLength, seqOf, u32At, writeLenenc } from "./packets";

export const CLIENT_CONNECT_WITH_DB: u32 = 8;
export const CLIENT_COMPRESS: u32 = 32;
export const CLIENT_PROTOCOL_41: u32 = 512;
export const CLIENT_SSL: u32 = 2048;
export const CLIENT_SECURE_CONNECTION: u32 = 32768;
export const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
export const CLIENT_CONNECT_ATTRS: u32 = 1 << 20;
export const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
export const CLIENT_DEPRECATE_EOF: u32 = 1 << 24;
export const CLIENT_OPTIONAL_RESULTSET_METADATA: u32 = 1 << 25;
export const CLIENT_ZSTD: u32 = 1 << 26;
export const CLIENT_QUERY_ATTRIBUTES: u32 = 1 << 27;

/**
 * Capabilities the proxy takes out of the greeting, because it must read what follows: TLS and
 * compression would hide every later packet, and query attributes or optional result-set
 * metadata change the layout of queries and results it frames. A client that requires TLS is
 * refused by its own driver ("server does not support secure connections").
 */
export const REFUSED_CAPS: u32 = CLIENT_SSL | CLIENT_COMPRESS | CLIENT_ZSTD | CLIENT_QUERY_ATTRIBUTES | CLIENT_OPTIONAL_RESULTSET_METADATA;

/** Where the parts of the last greeting parsed are (offsets in its bytes). */
export let greetingCaps: u32 = 0;
let scramble1At: i32 = 0;
let scramble2At: i32 = 0;
let scramble2Len: i32 = 0;
let pluginAt: i32 = 0;
let pluginLen: i32 = 0;
let capsLowAt: i32 = 0;
let capsHighAt: i32 = 0;
let mariadbCapsAt: i32 = -1;
export let greetingError: string = "";

/** Parses the greeting packet in [0, end); false (reason in greetingError) when it is not one. */
export function parseGreeting(b: Bytes, end: i32): bool {
  if (end < 5 || b.at(4) != 10) { greetingError = "the server's greeting is not protocol version 10"; return false; }
  const version = nulEnd(b, 5, end);
  if (version < 0) { greetingError = "truncated server version"; return false; }
  let p = version + 1 + 4; // connection id
  scramble1At = p;
  p += 8 + 1; // scramble part 1, filler
  if (p + 2 > end) { greetingError = "truncated greeting"; return false; }
  capsLowAt = p;
  let caps = <u32>b.at(p) | (<u32>b.at(p + 1) << 8);
  p += 2;
  pluginAt = 0; pluginLen = 0; scramble2At = p; scramble2Len = 0; capsHighAt = -1; mariadbCapsAt = -1;
  if (p + 16 <= end) {
    p += 1 + 2; // character set, status
    capsHighAt = p;
    caps |= (<u32>b.at(p) << 16) | (<u32>b.at(p + 1) << 24);
    p += 2;
    const authLen = <i32>b.at(p);
    p += 1;
    // MariaDB puts its extended capabilities in the last 4 of the 10 reserved bytes when it
    // does not claim CLIENT_MYSQL (bit 0).
    if ((caps & 1) == 0) mariadbCapsAt = p + 6;
    p += 10;
    if (caps & CLIENT_SECURE_CONNECTION) {
      scramble2At = p;
      scramble2Len = authLen - 8 > 13 ? authLen - 8 : 13;
      if (p + scramble2Len > end) { greetingError = "truncated scramble"; return false; }
      p += scramble2Len;
    }
    if (caps & CLIENT_PLUGIN_AUTH) {
      const e = nulEnd(b, p, end);
      pluginAt = p;
      pluginLen = (e < 0 ? end : e) - p;
    }
  }
  greetingCaps = caps & ~REFUSED_CAPS;
  return true;
}

/** Takes the refused capabilities out of the greeting parsed last, in place. */
export function rewriteGreeting(b: Bytes): void {
  store<u8>(b.ptr + <usize>capsLowAt, <u8>greetingCaps);
  store<u8>(b.ptr + <usize>capsLowAt + 1, <u8>(greetingCaps >> 8));
  if (capsHighAt >= 0) {
    store<u8>(b.ptr + <usize>capsHighAt, <u8>(greetingCaps >> 16));
    store<u8>(b.ptr + <usize>capsHighAt + 1, <u8>(greetingCaps >> 24));
  }
  // MariaDB's own extensions (bulk statements, cached result metadata) change framing: none.
  if (mariadbCapsAt >= 0) for (let i = 0; i < 4; i++) store<u8>(b.ptr + <usize>(mariadbCapsAt + i), 0);
}

// ---- the client's login ------------------------------------------------------------------

export let loginCaps: u32 = 0;
export let userAt: i32 = 0;
export let userLen: i32 = 0;
export let databaseAt: i32 = 0;
export let databaseLen: i32 = -1;
let fixedEnd: i32 = 0;
let authAt: i32 = 0;
let authLen: i32 = 0;
let afterPlugin: i32 = 0;
export let loginError: string = "";

/** Parses a login (HandshakeResponse41 or 320) in [0, end); false with loginError when malformed. */
export function parseLogin(b: Bytes, end: i32): bool {
  if (end < 4 + 4) { loginError = "login packet too short"; return false; }
  const caps = u32At(b, 4);
  databaseLen = -1;
  if ((caps & CLIENT_PROTOCOL_41) == 0) {
    // HandshakeResponse320: caps(2) max packet(3) user NUL auth…
    loginCaps = caps & 0xffff;
    userAt = 4 + 5;
    const u = nulEnd(b, userAt, end);
    if (u < 0) { loginError = "login without a user name"; return false; }
    userLen = u - userAt;
    fixedEnd = userAt; authAt = u + 1; authLen = end - authAt; afterPlugin = end;
    return true;
  }
  loginCaps = caps;
  if (caps & CLIENT_SSL) { loginError = "the client asked for TLS, which meltemi did not offer"; return false; }
  fixedEnd = 4 + 32;
  if (end <= fixedEnd) { loginError = "login packet too short"; return false; }
  userAt = fixedEnd;
  const u = nulEnd(b, userAt, end);
  if (u < 0) { loginError = "login without a user name"; return false; }
  userLen = u - userAt;
  let p = u + 1;
  if (caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
    const n = lenenc(b, p, end);
    if (n < 0 || p + lenencSize + <i32>n > end) { loginError = "bad auth response length"; return false; }
    authAt = p + lenencSize; authLen = <i32>n;
  } else if (caps & CLIENT_SECURE_CONNECTION) {
    if (p >= end) { loginError = "login without an auth response"; return false; }
    authAt = p + 1; authLen = <i32>b.at(p);
    if (authAt + authLen > end) { loginError = "bad auth response length"; return false; }
  } else {
    const e = nulEnd(b, p, end);
    authAt = p; authLen = (e < 0 ? end : e) - p;
  }
  p = authAt + authLen + ((caps & (CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | CLIENT_SECURE_CONNECTION)) == 0 ? 1 : 0);
  if ((caps & CLIENT_CONNECT_WITH_DB) && p < end) {
    const e = nulEnd(b, p, end);
    databaseAt = p;
    databaseLen = (e < 0 ? end : e) - p;
    p = e < 0 ? end : e + 1;
  }
  if ((caps & CLIENT_PLUGIN_AUTH) && p < end) {
    const e = nulEnd(b, p, end);
    p = e < 0 ? end : e + 1;
  }
  afterPlugin = p > end ? end : p;
  return true;
}

/**
 * Rebind, first step: an AuthSwitchRequest carrying the new server's plugin and scramble, so the
 * client proves itself again for that server. Sequence: the login's plus one.
 */
export function authSwitch(greeting: Bytes, login: Bytes, out: Output): i32 {
  const gEnd = 4 + payloadLength(greeting, 0);
  if (gEnd > greeting.length || !parseGreeting(greeting, gEnd)) return STATUS_PROTOCOL_ERROR;
  const lEnd = 4 + payloadLength(login, 0);
  if (lEnd > login.length || !parseLogin(login, lEnd)) return STATUS_PROTOCOL_ERROR;
  // Without plugin auth on both sides there is no way to ask the client for a new proof.
  if ((loginCaps & CLIENT_PLUGIN_AUTH) == 0 || pluginLen == 0) return STATUS_UNSUPPORTED;
  const len = 1 + pluginLen + 1 + 8 + scramble2Len;
  header(out, len, seqOf(login, 0) + 1);
  out.u8(0xfe).bytes(greeting, pluginAt, pluginLen).u8(0);
  out.bytes(greeting, scramble1At, 8).bytes(greeting, scramble2At, scramble2Len);
  return STATUS_OK;
}

/**
 * Rebind, second step: the login for the new server: the client's, with the auth response it
 * just computed for this server's scramble and this server's plugin name. Sequence 1.
 */
export function reLogin(greeting: Bytes, login: Bytes, answer: Bytes, out: Output): i32 {
  const gEnd = 4 + payloadLength(greeting, 0);
  if (gEnd > greeting.length || !parseGreeting(greeting, gEnd)) return STATUS_PROTOCOL_ERROR;
  const aEnd = 4 + payloadLength(answer, 0);
  if (aEnd > answer.length) return STATUS_PROTOCOL_ERROR;
  const lEnd = 4 + payloadLength(login, 0);
  if (lEnd > login.length || !parseLogin(login, lEnd) || (loginCaps & CLIENT_PROTOCOL_41) == 0) return STATUS_UNSUPPORTED;
  const proofLen = aEnd - 4;
  const body = new Output(lEnd + proofLen + 64);
  body.bytes(login, 4, userAt + userLen + 1 - 4);
  if (loginCaps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
    writeLenenc(body, proofLen);
  } else {
    if (proofLen > 255) return STATUS_UNSUPPORTED;
    body.u8(<u8>proofLen);
  }
  body.bytes(answer, 4, proofLen);
  if (databaseLen >= 0) body.bytes(login, databaseAt, databaseLen).u8(0);
  if (loginCaps & CLIENT_PLUGIN_AUTH) body.bytes(greeting, pluginAt, pluginLen).u8(0);
  if (afterPlugin < lEnd) body.bytes(login, afterPlugin, lEnd - afterPlugin);
  header(out, body.length, 1);
  out.copy(body.ptr, body.length);
  return STATUS_OK;
}
