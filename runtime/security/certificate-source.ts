// Where a workload's certificates come from: files (rotated when they change) or SDS. A source
// delivers checked material; a rotation it cannot use is reported and the last good one stays.

import type { CheckedCertificates } from './certificates';

export interface CertificateSource {
  /** 'files' or 'sds', for metrics and messages. */
  readonly kind: 'files' | 'sds';
  /** Resolves with the first usable material; rejects (MELTEMI_CERTIFICATE_*) when there is none in time. */
  start(): Promise<CheckedCertificates>;
  /** New material after the first (a rotation). */
  onUpdate: ((c: CheckedCertificates) => void) | undefined;
  /** A rotation was refused; the last good material keeps serving. */
  onReject: ((err: Error) => void) | undefined;
  close(): void;
}
