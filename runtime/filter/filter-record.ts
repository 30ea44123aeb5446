// The metadata record a filter call gets in IN (ABI-1.1.md §2): the layout of a decode record
// (ABI.md §6.1) with every key and value inline, so the guest reads one self-contained buffer.
// Built once per request and read by every filter of the chain.

import type { Metadata } from '../codec/metadata';
import { EntryFlag, Layout } from '../wasm/abi';
import { wellKnownKeyId } from '../codec/well-known-keys';

/** What a record is built from: a decoded frame's Metadata, or fixtures (the harness). */
export type RecordSource = Pick<Metadata, 'entryCount' | 'keyIdAt' | 'keyLengthAt' | 'valueLengthAt' | 'copyKeyTo' | 'copyValueTo'
  | 'frame' | 'messageType' | 'status' | 'flags' | 'requestIdLo' | 'requestIdHi' | 'streamIdLo' | 'streamIdHi'>;

/** A source for metadata given as key/value pairs (well-known keys travel by id, as from a codec). */
export function pairsSource(pairs: ReadonlyArray<readonly [string, string]>, messageType = 0, status = 0): RecordSource {
  const ids = pairs.map(([k]) => wellKnownKeyId(k));
  const keys = pairs.map(([k], i) => (ids[i] !== 0 ? Buffer.alloc(0) : Buffer.from(k, 'utf8')));
  const values = pairs.map(([, v]) => Buffer.from(v, 'utf8'));
  return {
    entryCount: pairs.length,
    keyIdAt: (i) => ids[i],
    keyLengthAt: (i) => keys[i].length,
    valueLengthAt: (i) => values[i].length,
    copyKeyTo: (i, dst, at) => keys[i].copy(dst, at),
    copyValueTo: (i, dst, at) => values[i].copy(dst, at),
    frame: Buffer.alloc(0),
    messageType: messageType as Metadata['messageType'],
    status, flags: 0, requestIdLo: 0, requestIdHi: 0, streamIdLo: 0, streamIdHi: 0,
  };
}



/** A fresh record (the harness, fixtures, the self-test). */
export function encodeRecord(meta: RecordSource | null): Buffer {
  return Buffer.from(writeRecord(meta));
}

// The proxy's records are written into one reused buffer with aligned int views: a record is
// read by the filters of one request in the same turn, and written again when a paused request
// resumes after others, so no request keeps a buffer of its own.
let scratch = new ArrayBuffer(4096);
let ints = new Int32Array(scratch);
let bytes = Buffer.from(scratch);
let owner: object | null = null;
let ownerView: Buffer = bytes.subarray(0, 0);

/** The record of `req`'s metadata, valid until the next call for another request. */
export function recordFor(req: object, meta: RecordSource | null): Buffer {
  if (owner === req) return ownerView; // the next filter of the chain: the same bytes, no new view
  ownerView = writeRecord(meta);
  owner = req;
  return ownerView;
}

/** Sizes first, then one pass: header and entries through the int view, bytes copied in. */
function writeRecord(meta: RecordSource | null): Buffer {
  const count = meta?.entryCount ?? 0;
  let inline = 0;
  for (let i = 0; i < count; i++) inline += meta!.keyLengthAt(i) + meta!.valueLengthAt(i);
  const entriesEnd = Layout.RECORD_HEADER_SIZE + count * Layout.ENTRY_SIZE;
  const length = (entriesEnd + inline + 7) & ~7;
  if (length > scratch.byteLength) {
    scratch = new ArrayBuffer(Math.max(length, scratch.byteLength * 2));
    ints = new Int32Array(scratch);
    bytes = Buffer.from(scratch);
    owner = null;
  }
  const i32 = ints;
  i32[0] = length;
  i32[1] = 0;
  i32[2] = meta?.frame.length ?? 0;
  i32[3] = (meta?.messageType ?? 0) | ((meta?.status ?? 0) << 8) | ((meta?.flags ?? 0) << 16);
  i32[4] = meta?.requestIdLo ?? 0;
  i32[5] = meta?.requestIdHi ?? 0;
  i32[6] = meta?.streamIdLo ?? 0;
  i32[7] = meta?.streamIdHi ?? 0;
  i32[8] = count;
  i32[9] = 0;
  let at = entriesEnd;
  for (let i = 0; i < count; i++) {
    const e = (Layout.RECORD_HEADER_SIZE + i * Layout.ENTRY_SIZE) >> 2;
    const id = meta!.keyIdAt(i);
    i32[e] = id | ((id === 0 ? EntryFlag.INLINE_KEY | EntryFlag.INLINE_VALUE : EntryFlag.INLINE_VALUE) << 16);
    const keyLen = id === 0 ? meta!.copyKeyTo(i, bytes, at) : 0;
    i32[e + 1] = id === 0 ? at : 0;
    i32[e + 2] = keyLen;
    at += keyLen;
    const valueLen = meta!.copyValueTo(i, bytes, at);
    i32[e + 3] = at;
    i32[e + 4] = valueLen;
    at += valueLen;
  }
  bytes.fill(0, at, length); // padding: no bytes of an earlier record reach a plugin
  owner = null;
  return bytes.subarray(0, length);
}

/** A record with no entries (the self-test's request). */
export const EMPTY_RECORD = encodeRecord(null);
