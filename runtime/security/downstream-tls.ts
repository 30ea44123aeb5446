// The inbound side of mTLS: PeerAuthentication for one accepted connection. The first bytes are
// peeked (a TLS record starts 0x16 0x03): STRICT refuses anything else, PERMISSIVE serves it as
// plaintext, DISABLE never looks. A TLS connection is terminated with the workload certificate,
// the client's certificate is required and verified against the trust bundle, and its SPIFFE ID
// must be in a trusted domain; it is then the connection's principal.

import type net from 'node:net';
import tls from 'node:tls';
import type { SecurityStats } from './security-stats';
import { principalOf, type SpiffeId } from './spiffe';
import type { WorkloadTls } from './workload-tls';

export const PEER_AUTHENTICATION_MODES = ['STRICT', 'PERMISSIVE', 'DISABLE'] as const;
export type PeerAuthenticationMode = typeof PEER_AUTHENTICATION_MODES[number];

/** What the transport proved about the client: Istio's connection_security_policy and principals. */
export interface ConnectionSecurity {
  readonly policy: 'mutual_tls' | 'none';
  /** The client's SPIFFE ID (mutual_tls only). */
  readonly peer: SpiffeId | undefined;
  /** Istio's source principal ('' without mTLS). */
  readonly principal: string;
  /** The SNI the client sent ('' if none). */
  readonly sni: string;
}

export const PLAINTEXT: ConnectionSecurity = { policy: 'none', peer: undefined, principal: '', sni: '' };

const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * OpenSSL's verdict on the peer's chain: null when it verified. Node keeps it on the socket's
 * TLS handle (`ssl`, as tls.Server reads it); if that ever goes, every connection is refused
 * rather than let through unverified.
 */
function chainError(socket: tls.TLSSocket): string | null {
  const handle = (socket as unknown as { ssl?: { verifyError?: () => (Error & { code?: string }) | null } }).ssl;
  if (typeof handle?.verifyError !== 'function') return 'this Node.js does not report TLS verification results';
  const err = handle.verifyError();
  return err ? `${err.code ?? ''} ${err.message}`.trim() : null;
}

/**
 * Settles `socket`'s transport under `mode`: resolves with the socket to serve (a TLSSocket over
 * it for mTLS) and what it proved; rejects (and counts why) when the connection is refused.
 */
export function secureInbound(socket: net.Socket, mode: Exclude<PeerAuthenticationMode, 'DISABLE'>, workload: WorkloadTls, stats: SecurityStats, timeoutMs: number): Promise<{ socket: net.Socket; security: ConnectionSecurity }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    /** Once the handshake began: TLS owns the socket, and only closing it closes the connection. */
    let secure: tls.TLSSocket | undefined;
    const timer = setTimeout(() => fail('timeout', `no TLS handshake within ${timeoutMs} ms`), timeoutMs);
    const fail = (outcome: Parameters<SecurityStats['handshake']>[1], why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('close', onClose);
      stats.handshake('inbound', outcome);
      secure?.destroy();
      reject(new Error(why));
    };
    const onClose = () => fail('failed', 'closed before its transport was settled');
    const onReadable = () => {
      const chunk = socket.read() as Buffer | null;
      if (chunk === null) return;
      socket.unshift(chunk);
      socket.removeListener('readable', onReadable);
      if (chunk[0] !== TLS_HANDSHAKE_RECORD) {
        if (mode === 'STRICT') {
          fail('plaintext_refused', 'plaintext refused: peer_authentication is STRICT');
          return;
        }
        settled = true;
        clearTimeout(timer);
        socket.removeListener('close', onClose);
        stats.handshake('inbound', 'plaintext');
        resolve({ socket, security: PLAINTEXT });
        return;
      }
      terminate();
    };
    const terminate = () => {
      // The peeked bytes are in the socket's buffer: TLSSocket feeds them to OpenSSL first.
      const tlsSocket = new tls.TLSSocket(socket, { isServer: true, secureContext: workload.secureContext, requestCert: true, rejectUnauthorized: true });
      secure = tlsSocket;
      tlsSocket.on('error', (err: Error) => fail('failed', `TLS handshake failed: ${err.message}`));
      tlsSocket.once('secure', () => {
        // A TLSSocket made outside a tls.Server lets OpenSSL finish the handshake whatever the
        // chain's verification said (tls.Server checks it in JS, and so must we): refused here.
        const verifyError = chainError(tlsSocket);
        if (verifyError !== null) {
          fail('failed', `the client certificate is not trusted: ${verifyError}`);
          return;
        }
        const check = workload.checkPeer(tlsSocket.getPeerX509Certificate()?.subjectAltName);
        if (check.error !== undefined) {
          fail('untrusted_peer', check.error);
          return;
        }
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeListener('close', onClose);
        stats.handshake('inbound', 'mutual_tls');
        const sni = (tlsSocket as tls.TLSSocket & { servername?: string | false }).servername;
        resolve({ socket: tlsSocket, security: { policy: 'mutual_tls', peer: check.id, principal: principalOf(check.id), sni: typeof sni === 'string' ? sni : '' } });
      });
    };
    socket.on('close', onClose);
    socket.on('readable', onReadable);
    if (socket.readableLength > 0) onReadable();
  });
}
