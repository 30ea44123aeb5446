// The PROXY protocol (HAProxy's, versions 1 and 2): a header before a connection's first byte
// that carries the client's address across a hop that would otherwise replace it. Listeners
// accept it (`proxy_protocol`), clusters send it (`proxy_protocol: v1|v2`).

import net from 'node:net';

export interface Address {
  readonly address: string;
  readonly port: number;
}

/** What a header says: the addresses, or none (v2 LOCAL, v1 UNKNOWN: a health check, the proxy's own connection). */
export interface ProxyHeader {
  readonly source: Address | undefined;
  readonly destination: Address | undefined;
  readonly version: 1 | 2;
}

export type ParseResult =
  | { readonly kind: 'need' }
  | { readonly kind: 'absent' }
  | { readonly kind: 'invalid'; readonly message: string }
  | { readonly kind: 'header'; readonly header: ProxyHeader; readonly length: number };

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The longest v1 line, CRLF included (the spec's 107). */
const V1_MAX = 107;
const V2_FIXED = 16;

/** Whether `buf` (all there is so far) could still be the start of `prefix`. */
function couldStart(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

/** Reads a header at the start of `buf`; 'absent' when the bytes cannot begin one. */
export function parseProxyHeader(buf: Buffer): ParseResult {
  if (couldStart(buf, V2_SIGNATURE)) return buf.length < V2_SIGNATURE.length ? { kind: 'need' } : parseV2(buf);
  if (couldStart(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? { kind: 'need' } : parseV1(buf);
  return { kind: 'absent' };
}

function parseV1(buf: Buffer): ParseResult {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return buf.length >= V1_MAX ? { kind: 'invalid', message: `v1 header longer than ${V1_MAX} bytes` } : { kind: 'need' };
  if (end + 2 > V1_MAX) return { kind: 'invalid', message: `v1 header longer than ${V1_MAX} bytes` };
  const parts = buf.toString('latin1', 0, end).split(' ');
  const length = end + 2;
  if (parts[1] === 'UNKNOWN') return { kind: 'header', header: { source: undefined, destination: undefined, version: 1 }, length };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return { kind: 'invalid', message: 'v1 header is not "PROXY TCP4|TCP6 src dst sport dport"' };
  const family = parts[1] === 'TCP4' ? 4 : 6;
  const [, , src, dst, sport, dport] = parts;
  if (net.isIP(src) !== family || net.isIP(dst) !== family) return { kind: 'invalid', message: `v1 header has an address that is not IPv${family}` };
  const ps = v1Port(sport);
  const pd = v1Port(dport);
  if (ps === undefined || pd === undefined) return { kind: 'invalid', message: 'v1 header has a port that is not 0-65535' };
  return { kind: 'header', header: { source: { address: src, port: ps }, destination: { address: dst, port: pd }, version: 1 }, length };
}

function v1Port(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

function parseV2(buf: Buffer): ParseResult {
  if (buf.length < V2_FIXED) return { kind: 'need' };
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) return { kind: 'invalid', message: `v2 header version ${verCmd >> 4}` };
  const command = verCmd & 0x0f;
  if (command > 1) return { kind: 'invalid', message: `v2 header command ${command}` };
  const length = V2_FIXED + buf.readUInt16BE(14);
  if (buf.length < length) return { kind: 'need' };
  const fam = buf[13];
  // LOCAL: the sender's own connection (a health check); addresses, if any, are ignored.
  if (command === 0 || fam === 0x00) return { kind: 'header', header: { source: undefined, destination: undefined, version: 2 }, length };
  const body = buf.subarray(V2_FIXED, length);
  if (fam === 0x11) {
    if (body.length < 12) return { kind: 'invalid', message: 'v2 TCP4 header shorter than its addresses' };
    return { kind: 'header', length, header: {
      version: 2,
      source: { address: ipv4(body, 0), port: body.readUInt16BE(8) },
      destination: { address: ipv4(body, 4), port: body.readUInt16BE(10) },
    } };
  }
  if (fam === 0x21) {
    if (body.length < 36) return { kind: 'invalid', message: 'v2 TCP6 header shorter than its addresses' };
    return { kind: 'header', length, header: {
      version: 2,
      source: { address: ipv6(body, 0), port: body.readUInt16BE(32) },
      destination: { address: ipv6(body, 16), port: body.readUInt16BE(34) },
    } };
  }
  // UDP and Unix sockets mean nothing to a TCP listener.
  return { kind: 'invalid', message: `v2 header family/transport 0x${fam.toString(16).padStart(2, '0')} is not TCP over IPv4 or IPv6` };
}

function ipv4(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

function ipv6(b: Buffer, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(at + i).toString(16));
  // Through SocketAddress so the text is canonical (:: compression), as Node prints addresses.
  return new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** `address` without an IPv4-mapped IPv6 prefix (a dual-stack socket's view of an IPv4 peer). */
function plain(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/**
 * The header announcing a connection from `source` to `destination`; LOCAL (v2) or UNKNOWN (v1)
 * when either is unknown or their families differ.
 */
export function encodeProxyHeader(version: 1 | 2, source: Address | undefined, destination: Address | undefined): Buffer {
  const src = source && plain(source.address);
  const dst = destination && plain(destination.address);
  const family = src && dst ? net.isIP(src) : 0;
  const known = family !== 0 && net.isIP(dst!) === family;
  if (version === 1) {
    if (!known) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    return Buffer.from(`PROXY TCP${family} ${src} ${dst} ${source!.port} ${destination!.port}\r\n`, 'latin1');
  }
  if (!known) return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const addrLen = family === 4 ? 12 : 36;
  const out = Buffer.alloc(V2_FIXED + addrLen);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, PROXY
  out[13] = family === 4 ? 0x11 : 0x21;
  out.writeUInt16BE(addrLen, 14);
  const addrBytes = (a: string) => (family === 4 ? Buffer.from(a.split('.').map(Number)) : ipv6Bytes(a));
  const ipLen = family === 4 ? 4 : 16;
  addrBytes(src!).copy(out, V2_FIXED);
  addrBytes(dst!).copy(out, V2_FIXED + ipLen);
  out.writeUInt16BE(source!.port, V2_FIXED + 2 * ipLen);
  out.writeUInt16BE(destination!.port, V2_FIXED + 2 * ipLen + 2);
  return out;
}

function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const expand = (gs: string[]) => gs.flatMap((g) => (g.includes('.') ? (() => { const b = g.split('.').map(Number); return [((b[0] << 8) | b[1]).toString(16), ((b[2] << 8) | b[3]).toString(16)]; })() : [g]));
  const l = expand(left);
  const r = expand(right);
  const groups = tail === undefined ? l : [...l, ...new Array<string>(8 - l.length - r.length).fill('0'), ...r];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** How long a connection may take to send its header (Envoy's listener_filters_timeout is 15 s). */
export const HEADER_TIMEOUT_MS = 5_000;

/**
 * Reads a header off `socket` before anything else reads it. Resolves with the header (undefined
 * when `allowWithout` and the client sent none) once the bytes after it are back in the socket for
 * the next reader, paused; rejects with the reason the connection must be closed.
 */
export function readProxyHeader(socket: net.Socket, allowWithout: boolean, timeoutMs = HEADER_TIMEOUT_MS): Promise<ProxyHeader | undefined> {
  return new Promise((resolve, reject) => {
    // Chunks kept as they came, joined once a header could be complete: a header sent a byte at a
    // time must not cost a copy of everything before it per byte.
    const chunks: Buffer[] = [];
    let length = 0;
    let buffered: Buffer = Buffer.alloc(0);
    /** Bytes needed before parsing again (a v2 header's declared length, once known). */
    let wanted = 0;
    const finish = (err: Error | undefined, header?: ProxyHeader, consumed = 0) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      if (err) return reject(err);
      // What followed the header belongs to the codec: handed back to the stream, unread.
      if (consumed < buffered.length) socket.unshift(buffered.subarray(consumed));
      resolve(header);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length < wanted) return;
      buffered = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
      chunks.length = 0;
      chunks.push(buffered);
      const r = parseProxyHeader(buffered);
      if (r.kind === 'need') {
        if (buffered.length >= V2_FIXED && buffered.subarray(0, V2_SIGNATURE.length).equals(V2_SIGNATURE)) wanted = V2_FIXED + buffered.readUInt16BE(14);
        return;
      }
      if (r.kind === 'header') return finish(undefined, r.header, r.length);
      if (r.kind === 'absent' && allowWithout) return finish(undefined, undefined, 0);
      finish(new Error(r.kind === 'absent' ? 'no PROXY protocol header' : `invalid PROXY protocol header: ${r.message}`));
    };
    const onEnd = () => finish(new Error('closed before a PROXY protocol header'));
    // Left in place: until the connection's own handler is attached, a reset must not be an unhandled 'error'.
    const onError = () => { /* 'close' follows and rejects */ };
    const timer = setTimeout(() => finish(new Error(`no PROXY protocol header within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', onError);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.resume();
  });
}
