// The metadata record a filter call gets in IN (ABI-1.1.md §2): the layout of a decode record
// (ABI.md §6.1) with every key and value inline, so the guest reads one self-contained buffer.
// Built once per request and shared by every filter of the chain.

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

/** A record with no entries (the self-test's request). */
export const EMPTY_RECORD = encodeRecord(null);

/** Once per request (every filter of the chain reads the same bytes): sizes first, then one pass. */
export function encodeRecord(meta: RecordSource | null): Buffer {
  const count = meta?.entryCount ?? 0;
  let inline = 0;
  for (let i = 0; i < count; i++) inline += meta!.keyLengthAt(i) + meta!.valueLengthAt(i);
  const entriesEnd = Layout.RECORD_HEADER_SIZE + count * Layout.ENTRY_SIZE;
  const length = (entriesEnd + inline + 7) & ~7;
  const buf = Buffer.allocUnsafe(length);
  buf.writeUInt32LE(length, 0);
  buf.writeUInt32LE(0, 4);
  buf.writeUInt32LE(meta?.frame.length ?? 0, 8);
  buf[12] = meta?.messageType ?? 0;
  buf[13] = meta?.status ?? 0;
  buf.writeUInt16LE(meta?.flags ?? 0, 14);
  buf.writeUInt32LE(meta?.requestIdLo ?? 0, 16);
  buf.writeUInt32LE(meta?.requestIdHi ?? 0, 20);
  buf.writeUInt32LE(meta?.streamIdLo ?? 0, 24);
  buf.writeUInt32LE(meta?.streamIdHi ?? 0, 28);
  buf.writeUInt32LE(count, 32);
  buf.writeUInt32LE(0, 36);
  let at = entriesEnd;
  for (let i = 0; i < count; i++) {
    const e = Layout.RECORD_HEADER_SIZE + i * Layout.ENTRY_SIZE;
    const id = meta!.keyIdAt(i);
    buf.writeUInt16LE(id, e);
    buf.writeUInt16LE(id === 0 ? EntryFlag.INLINE_KEY | EntryFlag.INLINE_VALUE : EntryFlag.INLINE_VALUE, e + 2);
    const keyLen = id === 0 ? meta!.copyKeyTo(i, buf, at) : 0;
    buf.writeUInt32LE(id === 0 ? at : 0, e + 4);
    buf.writeUInt32LE(keyLen, e + 8);
    at += keyLen;
    const valueLen = meta!.copyValueTo(i, buf, at);
    buf.writeUInt32LE(at, e + 12);
    buf.writeUInt32LE(valueLen, e + 16);
    at += valueLen;
  }
  buf.fill(0, at, length); // padding: no stale pool bytes reach a plugin
  return buf;
}
