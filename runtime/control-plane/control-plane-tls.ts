// mTLS for the control plane's gRPC server (Aeraki 1.4.2+ and istiod require it of proxies): its
// certificate, key and the roots client certificates must chain to, from files that are
// rotated without a restart. Every proxy must present a certificate.

import * as grpc from '@grpc/grpc-js';
import { ConsoleLogger, type Logger } from '../core/logger';
import { FileCertificateSource } from '../security/file-certificate-source';
import { SecurityStats } from '../security/security-stats';
import { WorkloadTls } from '../security/workload-tls';

export interface ControlPlaneTlsFiles {
  readonly certChain: string;
  readonly privateKey: string;
  readonly trustBundle: string;
}

/** Server credentials from `files` (checked now: a missing or expired certificate fails the start), and what releases them. */
export async function controlPlaneCredentials(files: ControlPlaneTlsFiles, logger: Logger = new ConsoleLogger('info')): Promise<{ credentials: grpc.ServerCredentials; close: () => void }> {
  const workload = new WorkloadTls(new FileCertificateSource({ ...files, refreshIntervalMs: 5_000 }), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', trustDomains: [] }, new SecurityStats(), logger);
  await workload.start();
  const provider = workload.grpcProvider();
  return { credentials: grpc.experimental.createCertificateProviderServerCredentials(provider, provider, true), close: () => workload.close() };
}
