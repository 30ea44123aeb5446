// Builds the Mutation buffer (ABI.md §6.2) that the host passes to a codec's encode.

import { Layout, MutationOp, MutationOpValue } from '../wasm/abi';
import { WELL_KNOWN_KEYS, wellKnownKeyId } from './well-known-keys';

export interface MutationEntry {
  op: MutationOpValue;
  key: string;
  value: string;
}

export class Mutation {
  private readonly ops: MutationEntry[] = [];
  private requestId: bigint | undefined;

  get size(): number {
    return this.ops.length + (this.requestId === undefined ? 0 : 1);
  }

  /** Adds one operation as it is (filters' mutations). */
  add(entry: MutationEntry): this {
    this.ops.push(entry);
    return this;
  }

  set(key: string, value: string): this {
    this.ops.push({ op: MutationOp.SET, key, value });
    return this;
  }

  append(key: string, value: string): this {
    this.ops.push({ op: MutationOp.APPEND, key, value });
    return this;
  }

  delete(key: string): this {
    this.ops.push({ op: MutationOp.DELETE, key, value: '' });
    return this;
  }

  /** A SET_REQUEST_ID operation is part of this mutation. */
  get setsRequestId(): boolean {
    return this.requestId !== undefined;
  }

  setRequestId(id: bigint): this {
    this.requestId = BigInt.asUintN(64, id);
    return this;
  }

  /** Serializes the ops. Keys and values are UTF-8; well-known keys travel by id. */
  encode(): Buffer {
    const parts: Buffer[] = [];
    const header = Buffer.alloc(Layout.MUTATION_HEADER_SIZE);
    header.writeUInt32LE(this.size, 0);
    parts.push(header);
    for (const { op, key, value } of this.ops) {
      const id = wellKnownKeyId(key);
      parts.push(encodeOp(op, id, id ? Buffer.alloc(0) : Buffer.from(key, 'utf8'), Buffer.from(value, 'utf8')));
    }
    if (this.requestId !== undefined) {
      const v = Buffer.alloc(8);
      v.writeBigUInt64LE(this.requestId);
      parts.push(encodeOp(MutationOp.SET_REQUEST_ID, 0, Buffer.alloc(0), v));
    }
    return Buffer.concat(parts);
  }
}

function encodeOp(op: number, keyId: number, key: Buffer, value: Buffer): Buffer {
  const bodyLen = (key.length + value.length + 3) & ~3;
  const b = Buffer.alloc(Layout.MUTATION_OP_HEADER_SIZE + bodyLen);
  b.writeUInt8(op, 0);
  b.writeUInt16LE(keyId, 2);
  b.writeUInt32LE(key.length, 4);
  b.writeUInt32LE(value.length, 8);
  key.copy(b, Layout.MUTATION_OP_HEADER_SIZE);
  value.copy(b, Layout.MUTATION_OP_HEADER_SIZE + key.length);
  return b;
}

/**
 * A mutation buffer that applies `base` (an encoded mutation, or null) and then rewrites the
 * request id: how the host renumbers requests on a shared upstream connection.
 */
export function withRequestId(base: Buffer | null, idLo: number, idHi: number): Buffer {
  const op = encodeOp(MutationOp.SET_REQUEST_ID, 0, EMPTY, requestIdBytes(idLo, idHi));
  if (!base || base.length < Layout.MUTATION_HEADER_SIZE) {
    const header = Buffer.alloc(Layout.MUTATION_HEADER_SIZE);
    header.writeUInt32LE(1, 0);
    return Buffer.concat([header, op]);
  }
  const out = Buffer.concat([base, op]);
  out.writeUInt32LE(base.readUInt32LE(0) + 1, 0);
  return out;
}

const EMPTY = Buffer.alloc(0);

function requestIdBytes(lo: number, hi: number): Buffer {
  const v = Buffer.alloc(8);
  v.writeUInt32LE(lo >>> 0, 0);
  v.writeUInt32LE(hi >>> 0, 4);
  return v;
}

/** The operations of an encoded mutation buffer (a filter's output), SET_REQUEST_ID left out. */
export function decodeMutation(buf: Buffer): MutationEntry[] {
  if (buf.length < Layout.MUTATION_HEADER_SIZE) throw new Error('mutation buffer shorter than its header');
  const count = buf.readUInt32LE(0);
  const ops: MutationEntry[] = [];
  let at = Layout.MUTATION_HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    if (at + Layout.MUTATION_OP_HEADER_SIZE > buf.length) throw new Error(`mutation op ${i} outside the buffer`);
    const op = buf.readUInt8(at);
    const keyId = buf.readUInt16LE(at + 2);
    const keyLen = buf.readUInt32LE(at + 4);
    const valLen = buf.readUInt32LE(at + 8);
    const body = at + Layout.MUTATION_OP_HEADER_SIZE;
    if (body + keyLen + valLen > buf.length) throw new Error(`mutation op ${i} outside the buffer`);
    if (op < MutationOp.SET || op > MutationOp.SET_REQUEST_ID) throw new Error(`mutation op ${i} has unknown op ${op}`);
    if (op !== MutationOp.SET_REQUEST_ID) {
      const key = keyId !== 0 ? WELL_KNOWN_KEYS[keyId] ?? '' : buf.toString('utf8', body, body + keyLen);
      if (key) ops.push({ op: op as MutationOpValue, key, value: buf.toString('utf8', body + keyLen, body + keyLen + valLen) });
    }
    at = body + ((keyLen + valLen + 3) & ~3);
  }
  return ops;
}
