// The TARS envelope (RequestF.tars): a packet is a 4-byte big-endian length, itself included, and
// one RequestPacket or ResponsePacket struct. The fields the proxy reads are found by tag once; the
// bytes in between are only skipped.
//
//   RequestPacket:  1 iVersion, 2 cPacketType, 3 iMessageType, 4 iRequestId, 5 sServantName,
//                   6 sFuncName, 7 sBuffer, 8 iTimeout, 9 context, 10 status
//   ResponsePacket: 1 iVersion, 2 cPacketType, 3 iRequestId, 4 iMessageType, 5 iRet, 6 sBuffer,
//                   7 status, 8 sResultDesc, 9 context
//
// A TUP packet (iVersion 2 or 3) is a RequestPacket both ways: its result code is the status
// entry STATUS_RESULT_CODE.

import { Bytes } from "../../sdk/assembly";
import { T_INT8, T_MAP, T_STRING1, T_STRING4, headTag, headType, intValue, readHead, readIntValue, readStringValue, skipValue, streamError, strAt, strLen } from "./stream";

export const VERSION_TARS: i64 = 1;
export const VERSION_TUP_SIMPLE: i64 = 2;
export const VERSION_TUP_COMPLEX: i64 = 3;

export const HEADER = 4;
/** The smallest length a packet can have: the length itself and a version field. */
export const MIN_PACKET = HEADER + 1;

const TAGS = 11;
/** Per tag 0..10 of the top-level struct: where its field starts (-1 if absent), its value and its end. */
export const fieldAt = new StaticArray<i32>(TAGS);
export const valueAt = new StaticArray<i32>(TAGS);
export const fieldEnd = new StaticArray<i32>(TAGS);
export const fieldType = new StaticArray<u8>(TAGS);
/** Where the first field with a tag past 10 starts (the packet's end if none). */
export let tailAt: i32 = 0;
export let packetError: string = "";

function bad(why: string): i32 {
  packetError = why;
  return -1;
}

/** Indexes the top-level fields of the packet [HEADER, end); 1, or -1 with `packetError`. */
export function indexFields(b: Bytes, end: i32): i32 {
  for (let i = 0; i < TAGS; i++) unchecked(fieldAt[i] = -1);
  tailAt = end;
  let p = HEADER;
  let last = -1;
  while (p < end) {
    const v = readHead(b, p, end);
    if (v < 0) return bad(streamError);
    const tag = headTag, type = headType;
    // Every TARS writer writes fields in tag order, and readers look for them in that order.
    if (tag <= last) return bad("field " + tag.toString() + " after field " + last.toString());
    last = tag;
    const e = skipValue(b, v, end, type, 0);
    if (e < 0) return bad("field " + tag.toString() + ": " + streamError);
    if (tag < TAGS) {
      unchecked(fieldAt[tag] = p);
      unchecked(valueAt[tag] = v);
      unchecked(fieldEnd[tag] = e);
      unchecked(fieldType[tag] = type);
    } else if (tailAt == end) {
      tailAt = p;
    }
    p = e;
  }
  return 1;
}

/** The integer field `tag`, or `missing` when it is absent; -1 with `packetError` when not an integer. */
export let fieldInt: i64 = 0;
export function intField(b: Bytes, tag: i32, missing: i64): i32 {
  if (unchecked(fieldAt[tag]) < 0) { fieldInt = missing; return 1; }
  const type = unchecked(fieldType[tag]);
  if (type > T_INT8 && type != 12 /* zero */) return bad("field " + tag.toString() + " is not an integer");
  readIntValue(b, unchecked(valueAt[tag]), unchecked(fieldEnd[tag]), type);
  fieldInt = intValue;
  return 1;
}

/** The string field `tag`: sets `fieldStrAt`/`fieldStrLen`; -1 with `packetError` when absent or not a string. */
export let fieldStrAt: i32 = 0;
export let fieldStrLen: i32 = 0;
export function stringField(b: Bytes, tag: i32): i32 {
  if (unchecked(fieldAt[tag]) < 0) return bad("field " + tag.toString() + " is missing");
  const type = unchecked(fieldType[tag]);
  if (type != T_STRING1 && type != T_STRING4) return bad("field " + tag.toString() + " is not a string");
  readStringValue(b, unchecked(valueAt[tag]), unchecked(fieldEnd[tag]), type);
  fieldStrAt = strAt;
  fieldStrLen = strLen;
  return 1;
}

/** Whether field `tag` is present and a map. */
export function isMap(tag: i32): bool {
  return unchecked(fieldAt[tag]) >= 0 && unchecked(fieldType[tag]) == T_MAP;
}

// ---- map<string, string> -----------------------------------------------------------------

/** The pairs of a `map<string, string>` value at `at`: call `nextPair` until it returns false. */
export let pairKeyAt: i32 = 0;
export let pairKeyLen: i32 = 0;
export let pairValueAt: i32 = 0;
export let pairValueLen: i32 = 0;
/** Where the current pair starts, and where the pairs end once `nextPair` returned false. */
export let pairAt: i32 = 0;
let cursor: i32 = 0;
let remaining: i32 = 0;
let mapEnd: i32 = 0;

/** Starts reading the map whose value begins at `at` and ends at `end`; its size in `remaining`. */
export function openMap(b: Bytes, at: i32, end: i32): i32 {
  const v = readHead(b, at, end);
  if (v < 0 || headTag != 0) return -1;
  const p = readIntValue(b, v, end, headType);
  if (p < 0 || intValue < 0) return -1;
  remaining = <i32>intValue;
  cursor = p;
  mapEnd = end;
  return remaining;
}

/** The next pair whose key and value are both strings; false at the end (or at a pair that is not). */
export function nextPair(b: Bytes): bool {
  pairAt = cursor;
  if (remaining <= 0) return false;
  let p = readHead(b, cursor, mapEnd);
  if (p < 0 || (headType != T_STRING1 && headType != T_STRING4)) return false;
  p = readStringValue(b, p, mapEnd, headType);
  if (p < 0) return false;
  pairKeyAt = strAt; pairKeyLen = strLen;
  p = readHead(b, p, mapEnd);
  if (p < 0 || (headType != T_STRING1 && headType != T_STRING4)) return false;
  p = readStringValue(b, p, mapEnd, headType);
  if (p < 0) return false;
  pairValueAt = strAt; pairValueLen = strLen;
  cursor = p;
  remaining--;
  return true;
}

/** Whether every pair was read (a map of strings only). */
export function mapDone(): bool {
  return remaining == 0;
}
