// Certificates from three PEM files, rotated without a restart. The files are polled (stat:
// inode, size, mtime, following symlinks) rather than watched: Kubernetes swaps a Secret
// volume's `..data` symlink, cert-manager and istio-agent rename files into place, and a poll
// sees every one of those. A writer that replaces the chain before the key produces one refused
// check (key mismatch) and then the good pair on the next poll.

import { stat } from 'node:fs/promises';
import { readRegularFile } from '../core/bounded-file';
import { MeltemiError } from '../core/errors';
import { checkCertificates, type CheckedCertificates } from './certificates';
import type { CertificateSource } from './certificate-source';

export interface CertificateFiles {
  readonly certChain: string;
  readonly privateKey: string;
  readonly trustBundle: string;
  readonly refreshIntervalMs: number;
}

/** PEM files are small; anything larger is not one (and is not read whole into memory). */
const MAX_PEM_BYTES = 1 << 20;

export class FileCertificateSource implements CertificateSource {
  readonly kind = 'files' as const;
  onUpdate: ((c: CheckedCertificates) => void) | undefined;
  onReject: ((err: Error) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private signature = '';
  private polling = false;

  constructor(private readonly files: CertificateFiles) {}

  async start(): Promise<CheckedCertificates> {
    const signature = await this.stamp();
    const material = await this.read();
    this.signature = signature;
    this.timer = setInterval(() => void this.poll(), this.files.refreshIntervalMs);
    this.timer.unref();
    return material;
  }

  /** Checks the files now (tests, SIGHUP) instead of at the next interval. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const signature = await this.stamp();
      if (signature === this.signature) return;
      this.signature = signature;
      this.onUpdate?.(await this.read());
    } catch (err) {
      this.onReject?.(err as Error);
    } finally {
      this.polling = false;
    }
  }

  private paths(): [string, string][] {
    return [['cert_chain', this.files.certChain], ['private_key', this.files.privateKey], ['trust_bundle', this.files.trustBundle]];
  }

  private async stamp(): Promise<string> {
    const parts = await Promise.all(this.paths().map(async ([field, path]) => {
      try {
        const s = await stat(path);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch (err) {
        throw new MeltemiError('MELTEMI_CERTIFICATE_MISSING', `security.certificates.files.${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }));
    return parts.join('|');
  }

  private async read(): Promise<CheckedCertificates> {
    const [certChain, privateKey, trustBundle] = await Promise.all(this.paths().map(async ([field, path]) => {
      try {
        return await readRegularFile(path, MAX_PEM_BYTES);
      } catch (err) {
        throw new MeltemiError('MELTEMI_CERTIFICATE_MISSING', `security.certificates.files.${field}: ${(err as Error).message}`);
      }
    }));
    return checkCertificates({ certChain, privateKey, trustBundle }, `certificate files ${this.files.certChain}`);
  }

  close(): void {
    clearInterval(this.timer);
  }
}
