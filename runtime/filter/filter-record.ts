// The metadata record a filter call gets in IN (ABI-1.1.md §2): the layout of a decode record
// (ABI.md §6.1) with every key and value inline, so the guest reads one self-contained buffer.
// Built once per request and shared by every filter of the chain.

import type { Metadata } from '../codec/metadata';
import { EntryFlag, Layout } from '../wasm/abi';
import { wellKnownKeyId } from '../codec/well-known-keys';

/** What a record is built from: a decoded frame's Metadata, or fixtures (the harness). */
export type RecordSource = Pick<Metadata, 'entryCount' | 'keyIdAt' | 'keyBytesAt' | 'valueBytesAt' | 'frame' | 'messageType'
  | 'status' | 'flags' | 'requestIdLo' | 'requestIdHi' | 'streamIdLo' | 'streamIdHi'>;

/** A record with no entries (the self-test's request). */
export const EMPTY_RECORD = encodeRecord(null);

/** A source for metadata given as key/value pairs (well-known keys travel by id, as from a codec). */
export function pairsSource(pairs: ReadonlyArray<readonly [string, string]>, messageType = 0, status = 0): RecordSource {
  const keys = pairs.map(([k]) => Buffer.from(k, 'utf8'));
  const values = pairs.map(([, v]) => Buffer.from(v, 'utf8'));
  const ids = pairs.map(([k]) => wellKnownKeyId(k));
  return {
    entryCount: pairs.length,
    keyIdAt: (i) => ids[i],
    keyBytesAt: (i) => (ids[i] !== 0 ? Buffer.alloc(0) : keys[i]),
    valueBytesAt: (i) => values[i],
    frame: Buffer.alloc(0),
    messageType: messageType as Metadata['messageType'],
    status, flags: 0, requestIdLo: 0, requestIdHi: 0, streamIdLo: 0, streamIdHi: 0,
  };
}

export function encodeRecord(meta: RecordSource | null): Buffer {
  const count = meta?.entryCount ?? 0;
  let inline = 0;
  for (let i = 0; i < count; i++) inline += (meta!.keyIdAt(i) === 0 ? meta!.keyBytesAt(i).length : 0) + meta!.valueBytesAt(i).length;
  const entriesEnd = Layout.RECORD_HEADER_SIZE + count * Layout.ENTRY_SIZE;
  const length = (entriesEnd + inline + 7) & ~7;
  const buf = Buffer.alloc(length);
  buf.writeUInt32LE(length, 0);
  buf.writeUInt32LE(0, 4);
  buf.writeUInt32LE(meta?.frame.length ?? 0, 8);
  buf.writeUInt8(meta?.messageType ?? 0, 12);
  buf.writeUInt8(meta?.status ?? 0, 13);
  buf.writeUInt16LE(meta?.flags ?? 0, 14);
  buf.writeUInt32LE(meta?.requestIdLo ?? 0, 16);
  buf.writeUInt32LE(meta?.requestIdHi ?? 0, 20);
  buf.writeUInt32LE(meta?.streamIdLo ?? 0, 24);
  buf.writeUInt32LE(meta?.streamIdHi ?? 0, 28);
  buf.writeUInt32LE(count, 32);
  let at = entriesEnd;
  for (let i = 0; i < count; i++) {
    const e = Layout.RECORD_HEADER_SIZE + i * Layout.ENTRY_SIZE;
    const id = meta!.keyIdAt(i);
    let flags = EntryFlag.INLINE_VALUE;
    buf.writeUInt16LE(id, e);
    if (id === 0) {
      const key = meta!.keyBytesAt(i);
      flags |= EntryFlag.INLINE_KEY;
      buf.writeUInt32LE(at, e + 4);
      buf.writeUInt32LE(key.length, e + 8);
      key.copy(buf, at);
      at += key.length;
    }
    const value = meta!.valueBytesAt(i);
    buf.writeUInt32LE(at, e + 12);
    buf.writeUInt32LE(value.length, e + 16);
    value.copy(buf, at);
    at += value.length;
    buf.writeUInt16LE(flags, e + 2);
  }
  return buf;
}
