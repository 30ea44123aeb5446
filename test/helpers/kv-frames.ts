// Builds frames of the "kv" conformance protocol (test/fixtures/plugins/kv).
import type { RawClient } from './proxy';

export function kvFrame(type: number, id: bigint, pairs: Array<[string, string | Buffer]>, flags = 0): Buffer {
  const body = pairs.map(([k, v]) => {
    const key = Buffer.from(k);
    const value = Buffer.isBuffer(v) ? v : Buffer.from(v);
    const head = Buffer.alloc(2 + key.length + 4);
    head.writeUInt16BE(key.length, 0);
    key.copy(head, 2);
    head.writeUInt32BE(value.length, 2 + key.length);
    return Buffer.concat([head, value]);
  });
  const header = Buffer.alloc(16);
  const len = 16 + body.reduce((n, b) => n + b.length, 0);
  header.writeUInt32BE(len, 0);
  header.writeUInt8(type, 4);
  header.writeUInt8(flags, 5);
  header.writeUInt16BE(pairs.length, 6);
  header.writeBigUInt64BE(id, 8);
  return Buffer.concat([header, ...body]);
}

export interface KvDecoded {
  type: number;
  flags: number;
  id: bigint;
  pairs: Array<[string, string]>;
}

/** Parses one kv frame (no validation: tests build their inputs). */
export function parseKv(buf: Buffer): KvDecoded {
  const count = buf.readUInt16BE(6);
  const pairs: Array<[string, string]> = [];
  let pos = 16;
  for (let i = 0; i < count; i++) {
    const kl = buf.readUInt16BE(pos);
    const key = buf.toString('utf8', pos + 2, pos + 2 + kl);
    const vl = buf.readUInt32BE(pos + 2 + kl);
    const value = buf.toString('utf8', pos + 6 + kl, pos + 6 + kl + vl);
    pairs.push([key, value]);
    pos += 6 + kl + vl;
  }
  return { type: buf.readUInt8(4), flags: buf.readUInt8(5), id: buf.readBigUInt64BE(8), pairs };
}

/** Every complete kv frame at the start of `buf`, in order. */
export function kvFrames(buf: Buffer): KvDecoded[] {
  const out: KvDecoded[] = [];
  while (buf.length >= 4 && buf.length >= buf.readUInt32BE(0)) {
    out.push(parseKv(buf.subarray(0, buf.readUInt32BE(0))));
    buf = buf.subarray(buf.readUInt32BE(0));
  }
  return out;
}

/** Sends one kv request on `client` and waits for its answer (undefined if the proxy closed first). */
export async function kvCall(client: RawClient, id: bigint, pairs: Array<[string, string]>): Promise<KvDecoded | undefined> {
  const before = kvFrames(client.received).length;
  client.write(kvFrame(0, id, pairs));
  await client.until(() => kvFrames(client.received).length > before || client.closed);
  return kvFrames(client.received)[before];
}
