// YAML of the two sidecars of the mTLS tests: a server sidecar with inbound Redis listeners and a
// client sidecar whose cluster originates ISTIO_MUTUAL, each with its identity in files.

import { mkdtempSync } from 'node:fs';
import Redis from 'ioredis';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PLUGIN_DIR } from './paths';
import { writeWorkloadFiles, type Issued, type TestCa } from './test-ca';

/** Files of one sidecar's identity. */
export function identity(ca: TestCa, issued: Issued, bundle = ca.root): { certChain: string; privateKey: string; trustBundle: string } {
  return writeWorkloadFiles(mkdtempSync(join(tmpdir(), 'meltemi-id-')), issued, bundle);
}

const certificatesYaml = (files: { certChain: string; privateKey: string; trustBundle: string }) => `
  certificates:
    files: { cert_chain: ${JSON.stringify(files.certChain)}, private_key: ${JSON.stringify(files.privateKey)}, trust_bundle: ${JSON.stringify(files.trustBundle)}, refresh_interval: 50ms }`;

/** A server sidecar: inbound listeners `strict` and `permissive` to redis at `port`. */
export function serverSidecarYaml(files: ReturnType<typeof identity>, redisPort: number, extra = ''): string {
  return `
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
security:${certificatesYaml(files)}
${extra}
listeners:
  - name: strict
    port: 0
    protocol: redis
    traffic_direction: inbound
    peer_authentication: STRICT
    route_config: { routes: [ { name: all, route: { cluster: "inbound|6379||" } } ] }
  - name: permissive
    port: 0
    protocol: redis
    traffic_direction: inbound
    route_config: { routes: [ { name: all, route: { cluster: "inbound|6379||" } } ] }
clusters:
  - name: "inbound|6379||"
    endpoints: [ { address: 127.0.0.1, port: ${redisPort} } ]
`;
}

/** A client sidecar: outbound listener `out` to `port` over mTLS (`sans`: the server identities it accepts). */
export function clientSidecarYaml(files: ReturnType<typeof identity>, port: number, sans: string[] = [], listenerExtra = '', securityExtra = ''): string {
  return `
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)}, watch: false }
security:${certificatesYaml(files)}
${securityExtra}
listeners:
  - name: out
    port: 0
    protocol: redis
${listenerExtra}
    route_config: { routes: [ { name: all, route: { cluster: "outbound|6379||cache.data.svc.cluster.local" } } ] }
clusters:
  - name: "outbound|6379||cache.data.svc.cluster.local"
    endpoints: [ { address: 127.0.0.1, port: ${port} } ]
    tls: { mode: ISTIO_MUTUAL${sans.length ? `, subject_alt_names: ${JSON.stringify(sans)}` : ''} }
`;
}


/** A Redis client of the mTLS tests (RESP2, no retries, connected by the caller): what fails, failed through the sidecars. */
export function meshRedis(port: number): Redis {
  return new Redis({ port, host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
}
