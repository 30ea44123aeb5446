// Metadata exchange between sidecars, as MetaProtocol Proxy's metadata_exchange does it: the
// outbound side adds `x-envoy-peer-metadata` (base64 of a google.protobuf.Struct of its node
// metadata, Istio's keys) and `x-envoy-peer-metadata-id` to each request; the inbound side adds
// its own to each response. Each side then labels its metrics with the other's workload.
//
// The Struct is written and read here by hand (string values and the nested LABELS struct are
// all that is used), so worker threads need not load protobufjs. What a peer sends is hostile:
// lengths are checked before use, the size is capped, and the peers remembered are capped too
// (every distinct peer is a set of metric series).

import { UNKNOWN, UNKNOWN_PEER, type WorkloadIdentity } from './workload';

export const PEER_METADATA_KEY = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID_KEY = 'x-envoy-peer-metadata-id';
/** Larger values are not decoded (Istio's own are a few hundred bytes). */
export const MAX_PEER_METADATA_BYTES = 8 * 1024;
/** Distinct peers kept; past this, new ones are counted as unknown. */
export const MAX_PEERS = 1024;
/** Longer label values are cut (they become metric labels and log fields). */
const MAX_VALUE_LENGTH = 256;

const CANONICAL_NAME = 'service.istio.io/canonical-name';
const CANONICAL_REVISION = 'service.istio.io/canonical-revision';

// ---- encoding --------------------------------------------------------------------------------

function varint(n: number, out: number[]): void {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
}

function bytesField(tag: number, body: Buffer | number[], out: number[]): void {
  out.push(tag);
  varint(body.length, out);
  for (const b of body) out.push(b);
}

function struct(fields: ReadonlyArray<[string, string | ReadonlyArray<[string, string]>]>): number[] {
  const out: number[] = [];
  for (const [key, value] of fields) {
    const v: number[] = [];
    if (typeof value === 'string') bytesField(0x1a, Buffer.from(value, 'utf8'), v); // Value.string_value = 3
    else bytesField(0x2a, struct(value), v); // Value.struct_value = 5
    const entry: number[] = [];
    bytesField(0x0a, Buffer.from(key, 'utf8'), entry); // key = 1
    bytesField(0x12, v, entry); // value = 2
    bytesField(0x0a, entry, out); // Struct.fields = 1 (map entry)
  }
  return out;
}

/** This proxy's identity as the base64 Struct a peer reads. */
export function encodePeerMetadata(self: WorkloadIdentity): string {
  const labels: Array<[string, string]> = [];
  if (self.app !== UNKNOWN) labels.push(['app', self.app]);
  if (self.version !== UNKNOWN) labels.push(['version', self.version]);
  labels.push([CANONICAL_NAME, self.canonicalService], [CANONICAL_REVISION, self.canonicalRevision]);
  const fields: Array<[string, string | Array<[string, string]>]> = [
    ['WORKLOAD_NAME', self.workload], ['NAMESPACE', self.namespace], ['CLUSTER_ID', self.cluster], ['LABELS', labels],
  ];
  return Buffer.from(struct(fields.filter(([, v]) => v !== UNKNOWN))).toString('base64');
}

// ---- decoding --------------------------------------------------------------------------------

class Reader {
  constructor(private readonly b: Buffer, public at: number, readonly end: number) {}

  varint(): number {
    let n = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.at >= this.end) throw new Error('truncated varint');
      const byte = this.b[this.at++];
      n += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return n;
    }
    throw new Error('varint too long');
  }

  /** A length-delimited field's bounds. */
  sub(): Reader {
    const len = this.varint();
    if (len > this.end - this.at) throw new Error('length past the end');
    const r = new Reader(this.b, this.at, this.at + len);
    this.at += len;
    return r;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.sub();
    else if (wire === 1) this.at += 8;
    else if (wire === 5) this.at += 4;
    else throw new Error(`wire type ${wire}`);
    if (this.at > this.end) throw new Error('field past the end');
  }

  text(): string {
    return this.b.toString('utf8', this.at, this.end).slice(0, MAX_VALUE_LENGTH);
  }
}

type Fields = Map<string, string | Map<string, string>>;

function readStruct(r: Reader, depth: number): Fields {
  const fields: Fields = new Map();
  while (r.at < r.end) {
    const tag = r.varint();
    if (tag !== 0x0a) {
      r.skip(tag & 7);
      continue;
    }
    const entry = r.sub();
    let key = '';
    let value: string | Map<string, string> | undefined;
    while (entry.at < entry.end) {
      const t = entry.varint();
      if (t === 0x0a) key = entry.sub().text();
      else if (t === 0x12) {
        const v = entry.sub();
        while (v.at < v.end) {
          const vt = v.varint();
          if (vt === 0x1a) value = v.sub().text();
          else if (vt === 0x2a && depth === 0) {
            const inner = readStruct(v.sub(), 1);
            value = new Map([...inner].filter((e): e is [string, string] => typeof e[1] === 'string'));
          } else v.skip(vt & 7);
        }
      } else entry.skip(t & 7);
    }
    if (value !== undefined && fields.size < 64) fields.set(key, value);
  }
  return fields;
}

/** The identity in a peer's x-envoy-peer-metadata; throws on a malformed value. */
export function decodePeerMetadata(base64: string, nodeId: string): WorkloadIdentity {
  if (base64.length > (MAX_PEER_METADATA_BYTES * 4) / 3 + 4) throw new Error(`longer than ${MAX_PEER_METADATA_BYTES} bytes`);
  const bytes = Buffer.from(base64, 'base64');
  const fields = readStruct(new Reader(bytes, 0, bytes.length), 0);
  const str = (k: string) => {
    const v = fields.get(k);
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const labelsField = fields.get('LABELS');
  const labels = labelsField instanceof Map ? labelsField : new Map<string, string>();
  const workload = str('WORKLOAD_NAME') ?? UNKNOWN;
  const app = labels.get('app') ?? UNKNOWN;
  const version = labels.get('version') ?? UNKNOWN;
  return {
    workload,
    namespace: str('NAMESPACE') ?? UNKNOWN,
    app,
    version,
    canonicalService: labels.get(CANONICAL_NAME) ?? (app !== UNKNOWN ? app : workload),
    canonicalRevision: labels.get(CANONICAL_REVISION) ?? (version !== UNKNOWN ? version : 'latest'),
    cluster: str('CLUSTER_ID') ?? UNKNOWN,
    principal: UNKNOWN,
    nodeId: nodeId.slice(0, MAX_VALUE_LENGTH),
  };
}

/**
 * Peers seen. Identities are interned by what they say (every field), so one identity sent in
 * many encodings is one object — metric rows compare peers by identity, and an attacker
 * re-encoding a value must not multiply them. At most MAX_PEERS identities; the cache of raw
 * values is cleared when it fills (decoding again is bounded by MAX_PEER_METADATA_BYTES).
 */
export class PeerTable {
  private readonly byValue = new Map<string, WorkloadIdentity>();
  private readonly identities = new Map<string, WorkloadIdentity>();
  /** Values that could not be decoded, or named a new identity past the cap. */
  rejected = 0;

  lookup(base64: string, nodeId: string): WorkloadIdentity {
    const known = this.byValue.get(base64);
    if (known !== undefined) return known;
    let decoded: WorkloadIdentity;
    try {
      decoded = decodePeerMetadata(base64, nodeId);
    } catch {
      this.rejected++;
      return UNKNOWN_PEER;
    }
    if (decoded.workload === UNKNOWN) {
      this.rejected++; // names no workload: nothing to attribute
      return UNKNOWN_PEER;
    }
    const key = [decoded.workload, decoded.namespace, decoded.app, decoded.version, decoded.canonicalService, decoded.canonicalRevision, decoded.cluster].join('\u0000');
    let peer = this.identities.get(key);
    if (peer === undefined) {
      if (this.identities.size >= MAX_PEERS) {
        this.rejected++;
        return UNKNOWN_PEER;
      }
      this.identities.set(key, (peer = decoded));
    }
    if (this.byValue.size >= MAX_PEERS * 4) this.byValue.clear();
    this.byValue.set(base64, peer);
    return peer;
  }
}
