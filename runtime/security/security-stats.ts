// Counters of the TLS side, read by /metrics at scrape time (runtime/admin/metric-list.ts).

import { countIn } from '../core/count-in';

export type HandshakeSide = 'inbound' | 'outbound';
/**
 * How a connection's transport was settled: mutual_tls (verified peer), plaintext (accepted
 * without TLS: PERMISSIVE or DISABLE), plaintext_refused (STRICT), failed (handshake error,
 * untrusted or missing certificate), untrusted_peer (verified chain, SPIFFE ID not acceptable),
 * timeout.
 */
export type HandshakeOutcome = 'mutual_tls' | 'plaintext' | 'plaintext_refused' | 'failed' | 'untrusted_peer' | 'timeout';

export class SecurityStats {
  /** Expiry of the workload certificate and of the first trust-bundle root to expire (Unix seconds; 0: none). */
  certificateExpiry = 0;
  trustBundleExpiry = 0;
  source: 'files' | 'sds' | '' = '';
  rotations = 0;
  rotationRejections = 0;
  readonly handshakes = new Map<string, number>();
  /** Requests authorization refused or let through, by listener and decision. */
  readonly authorization = new Map<string, number>();

  handshake(side: HandshakeSide, outcome: HandshakeOutcome): void {
    countIn(this.handshakes, `${side}\u0000${outcome}`);
  }

  decided(listener: string, decision: 'allow' | 'deny'): void {
    countIn(this.authorization, `${listener}\u0000${decision}`);
  }
}
