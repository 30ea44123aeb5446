// A certificate authority made with the openssl command line, as an operator would make one:
// a root, and workload certificates with SPIFFE IDs in their URI SAN (Istio's X.509-SVIDs).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Issued {
  readonly certChain: string;
  readonly privateKey: string;
  /** Paths of the PEM files. */
  readonly certFile: string;
  readonly keyFile: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export class TestCa {
  private serial = 1;

  private constructor(readonly dir: string, readonly name: string) {}

  /** A new root CA (EC P-256) in its own directory. */
  static create(name = 'test-root'): TestCa {
    const dir = mkdtempSync(join(tmpdir(), `meltemi-ca-${name}-`));
    const ca = new TestCa(dir, name);
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root-key.pem', '-out', 'root-cert.pem',
      '-days', '30', '-subj', `/O=meltemi tests/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    return ca;
  }

  get rootFile(): string {
    return join(this.dir, 'root-cert.pem');
  }

  get root(): string {
    return readFileSync(this.rootFile, 'utf8');
  }

  /**
   * A workload certificate for `spiffeId` (any URI SANs given), valid from `startOffsetDays` to
   * `days` from now; `dns` adds DNS SANs (a control plane's certificate).
   */
  issue(label: string, sans: { uri?: string[]; dns?: string[] }, opts: { days?: number; notAfter?: string } = {}): Issued {
    const serial = this.serial++;
    const key = `${label}-${serial}-key.pem`;
    const csr = `${label}-${serial}.csr`;
    const cert = `${label}-${serial}-cert.pem`;
    const ext = `${label}-${serial}.ext`;
    const altNames = [...(sans.uri ?? []).map((u) => `URI:${u}`), ...(sans.dns ?? []).map((d) => `DNS:${d}`)].join(',');
    writeFileSync(join(this.dir, ext), [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      ...(altNames ? [`subjectAltName=critical,${altNames}`] : []),
    ].join('\n'));
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', '/O=meltemi tests'], this.dir);
    if (opts.notAfter) {
      // An already expired certificate: OpenSSL 3.0's `x509 -req` cannot set past dates; `ca` can.
      writeFileSync(join(this.dir, 'index.txt'), '');
      writeFileSync(join(this.dir, 'ca.cnf'), [
        '[ca]', 'default_ca = test', '[test]', `dir = ${this.dir}`, 'database = $dir/index.txt', 'new_certs_dir = $dir', 'serial = $dir/serial',
        'certificate = $dir/root-cert.pem', 'private_key = $dir/root-key.pem', 'default_md = sha256', 'policy = any', 'unique_subject = no',
        '[any]', 'organizationName = optional',
      ].join('\n'));
      writeFileSync(join(this.dir, 'serial'), `${(1000 + serial).toString(16).padStart(4, '0')}\n`);
      openssl(['ca', '-batch', '-config', 'ca.cnf', '-in', csr, '-out', cert, '-extfile', ext, '-startdate', '20200101000000Z', '-enddate', opts.notAfter, '-notext'], this.dir);
    } else {
      openssl(['x509', '-req', '-in', csr, '-CA', 'root-cert.pem', '-CAkey', 'root-key.pem', '-set_serial', String(1000 + serial), '-extfile', ext,
        '-days', String(opts.days ?? 1), '-out', cert], this.dir);
    }
    return {
      certChain: readFileSync(join(this.dir, cert), 'utf8'),
      privateKey: readFileSync(join(this.dir, key), 'utf8'),
      certFile: join(this.dir, cert),
      keyFile: join(this.dir, key),
    };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Writes `issued` and a trust bundle as the three files a sidecar reads (under `dir`). */
export function writeWorkloadFiles(dir: string, issued: Issued, trustBundle: string): { certChain: string; privateKey: string; trustBundle: string } {
  const files = { certChain: join(dir, 'cert-chain.pem'), privateKey: join(dir, 'key.pem'), trustBundle: join(dir, 'root-cert.pem') };
  writeFileSync(files.certChain, issued.certChain);
  writeFileSync(files.privateKey, issued.privateKey);
  writeFileSync(files.trustBundle, trustBundle);
  return files;
}
