// Host-side Metadata of one decoded frame. Values are decoded lazily, as latin1 (one char per byte),
// from the host's own input buffer or from a copy of the record's inline bytes; nothing is turned
// into a string until a route or filter asks for it.

import { EntryFlag, MESSAGE_TYPE_NAMES, MessageTypeValue } from '../wasm/abi';
import { WELL_KNOWN_KEYS } from './well-known-keys';

const ENTRY_INTS = 5;

export class Metadata {
  private names: (string | undefined)[] | undefined;

  constructor(
    readonly messageType: MessageTypeValue,
    readonly status: number,
    readonly flags: number,
    readonly requestIdLo: number,
    readonly requestIdHi: number,
    readonly streamIdLo: number,
    readonly streamIdHi: number,
    /** The frame's bytes (a view of the connection's input; do not keep past the request). */
    readonly frame: Buffer,
    private readonly src: Buffer,
    /** A copy of the whole decode batch (shared by its frames), as bytes and as ints. */
    private readonly batch: Buffer,
    private readonly ents: Int32Array,
    /** Index in `ents` of this record's first entry. */
    private readonly entBase: number,
    readonly entryCount: number,
    /** Byte offset of this record in `batch` (inline offsets are relative to it). */
    private readonly recordOff: number,
  ) {}

  /** The request id as a number; exact below 2^53. */
  get requestId(): number {
    return this.requestIdHi * 0x1_0000_0000 + this.requestIdLo;
  }

  /** ABI 1.2: the codec's word about the response this request expects (handed back to the upstream decode). */
  get expect(): number {
    return this.ents[this.entBase - 1] >>> 0;
  }

  hasFlag(flag: number): boolean {
    return (this.flags & flag) !== 0;
  }

  keyAt(i: number): string {
    const names = (this.names ??= new Array<string | undefined>(this.entryCount));
    let name = names[i];
    if (name === undefined) {
      const e = this.entBase + i * ENTRY_INTS;
      const head = this.ents[e];
      const id = head & 0xffff;
      if (id !== 0) {
        name = WELL_KNOWN_KEYS[id] ?? `unknown-key-${id}`;
      } else {
        const inline = ((head >>> 16) & EntryFlag.INLINE_KEY) !== 0;
        const off = this.ents[e + 1] + (inline ? this.recordOff : 0);
        name = (inline ? this.batch : this.src).latin1Slice(off, off + this.ents[e + 2]);
      }
      names[i] = name;
    }
    return name;
  }

  /** The well-known key id of entry `i`, or 0 for a named key. */
  keyIdAt(i: number): number {
    return this.ents[this.entBase + i * ENTRY_INTS] & 0xffff;
  }

  /** Length of the key bytes of entry `i` (0 for a well-known key). */
  keyLengthAt(i: number): number {
    return this.ents[this.entBase + i * ENTRY_INTS + 2];
  }

  valueLengthAt(i: number): number {
    return this.ents[this.entBase + i * ENTRY_INTS + 4];
  }

  /** Copies the key bytes of entry `i` into `dst` at `at`; returns the bytes copied. */
  copyKeyTo(i: number, dst: Buffer, at: number): number {
    const e = this.entBase + i * ENTRY_INTS;
    const inline = ((this.ents[e] >>> 16) & EntryFlag.INLINE_KEY) !== 0;
    const off = this.ents[e + 1] + (inline ? this.recordOff : 0);
    return copySmall(inline ? this.batch : this.src, off, this.ents[e + 2], dst, at);
  }

  /** Copies the value bytes of entry `i` into `dst` at `at`; returns the bytes copied. */
  copyValueTo(i: number, dst: Buffer, at: number): number {
    const e = this.entBase + i * ENTRY_INTS;
    const inline = ((this.ents[e] >>> 16) & EntryFlag.INLINE_VALUE) !== 0;
    const off = this.ents[e + 3] + (inline ? this.recordOff : 0);
    return copySmall(inline ? this.batch : this.src, off, this.ents[e + 4], dst, at);
  }

  valueAt(i: number): string {
    const e = this.entBase + i * ENTRY_INTS;
    const inline = ((this.ents[e] >>> 16) & EntryFlag.INLINE_VALUE) !== 0;
    const off = this.ents[e + 3] + (inline ? this.recordOff : 0);
    return (inline ? this.batch : this.src).latin1Slice(off, off + this.ents[e + 4]);
  }

  valueBytesAt(i: number): Buffer {
    const e = this.entBase + i * ENTRY_INTS;
    const inline = ((this.ents[e] >>> 16) & EntryFlag.INLINE_VALUE) !== 0;
    const off = this.ents[e + 3] + (inline ? this.recordOff : 0);
    return (inline ? this.batch : this.src).subarray(off, off + this.ents[e + 4]);
  }

  private indexOf(name: string): number {
    for (let i = 0, n = this.entryCount; i < n; i++) if (this.keyAt(i) === name) return i;
    return -1;
  }

  /**
   * First value of the well-known key `id` (ABI.md §6.1), also when a codec put it by `name`:
   * compares ids before names, so no key string is made for the entries passed over.
   */
  getWellKnown(id: number, name: string): string | undefined {
    for (let i = 0, n = this.entryCount; i < n; i++) {
      const k = this.ents[this.entBase + i * ENTRY_INTS] & 0xffff;
      if (k === id || (k === 0 && this.ents[this.entBase + i * ENTRY_INTS + 2] === name.length && this.keyAt(i) === name)) return this.valueAt(i);
    }
    return undefined;
  }

  /** First value of `name`, as latin1 (byte-exact), or undefined. */
  get(name: string): string | undefined {
    const i = this.indexOf(name);
    return i < 0 ? undefined : this.valueAt(i);
  }

  getAll(name: string): string[] {
    const values: string[] = [];
    for (let i = 0, n = this.entryCount; i < n; i++) if (this.keyAt(i) === name) values.push(this.valueAt(i));
    return values;
  }

  has(name: string): boolean {
    return this.indexOf(name) >= 0;
  }

  entries(): Array<[string, string]> {
    const list: Array<[string, string]> = [];
    for (let i = 0, n = this.entryCount; i < n; i++) list.push([this.keyAt(i), this.valueAt(i)]);
    return list;
  }

  toJSON(): Record<string, unknown> {
    return {
      type: MESSAGE_TYPE_NAMES[this.messageType] ?? this.messageType,
      status: this.status,
      flags: this.flags,
      requestId: this.requestId,
      frameLength: this.frame.length,
      metadata: this.entries().map(([k, v]) => [k, Buffer.from(v, 'latin1').toString('utf8')]),
    };
  }
}

/** Metadata keys and values are mostly a few bytes: a loop beats a native copy call there. */
function copySmall(src: Buffer, off: number, len: number, dst: Buffer, at: number): number {
  if (len > 32) return src.copy(dst, at, off, off + len);
  for (let k = 0; k < len; k++) dst[at + k] = src[off + k];
  return len;
}
