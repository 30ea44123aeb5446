// meltemi's control plane: resources from a source (a watched directory), built into routes and
// clusters the way Aeraki builds them, served over RDS and ADS.

import type { Logger } from '../core/logger';
import { buildConfig } from './route-builder';
import { mergeLastGood } from './last-good';
import type { Located, ResourceSnapshot, ResourceSource } from './resource-source';
import { XdsServer } from './xds-server';
import { controlPlaneCredentials, type ControlPlaneTlsFiles } from './control-plane-tls';
import type { AuthorizationPolicyResource } from './resources';
import { buildListeners, ListenerOptions } from './listener-builder';

export class ControlPlane {
  readonly server: XdsServer;
  lastSnapshot: ResourceSnapshot | undefined;
  /** What is served: valid resources, and the last good versions of invalid ones. */
  served: Located[] = [];
  private loggedNotes = new Set<string>();
  port = 0;

  /** `listeners`: where served listeners bind (LDS) when a service has no loopback address. */
  constructor(private readonly source: ResourceSource, private readonly logger: Logger, private readonly listeners: ListenerOptions = { address: '127.0.0.1' }) {
    this.server = new XdsServer(logger);
  }

  private closeTls: (() => void) | undefined;

  /** `tls`: serve over mTLS with these certificate files (every proxy must present a certificate). */
  async start(address: string, port: number, tls?: ControlPlaneTlsFiles): Promise<number> {
    const secured = tls ? await controlPlaneCredentials(tls, this.logger) : undefined;
    this.closeTls = secured?.close;
    await this.source.start((snapshot) => this.apply(snapshot));
    this.port = await this.server.listen(address, port, secured?.credentials);
    this.logger.log('info', `control plane serving RDS and ADS (CDS, EDS, LDS, AuthorizationPolicies) on ${address}:${this.port}${tls ? ' over mTLS' : ''}`);
    return this.port;
  }

  private apply(snapshot: ResourceSnapshot): void {
    if (snapshot.unreadable && this.lastSnapshot) {
      // A directory that vanished or cannot be read says nothing about the resources: keep serving.
      for (const e of snapshot.errors) this.logger.log('error', `${e.message}; the last good resources keep serving`, { dir: e.file });
      return;
    }
    this.lastSnapshot = snapshot;
    const merged = mergeLastGood(snapshot.resources, snapshot.errors, this.served);
    this.served = merged.resources;
    const keptBy = new Map(merged.kept.map((k) => [k.error, k.key]));
    for (const e of snapshot.errors) {
      const kept = keptBy.get(e);
      const outcome = kept ? `; the last good ${kept} keeps serving`
        : e.host !== undefined && merged.withheldHosts.has(e.host) ? `; routes for ${e.host} are withheld until it is valid`
          : '; skipped';
      this.logger.log('error', `invalid resource in ${e.file}: ${e.message}${outcome}`);
    }
    const built = buildConfig(merged.resources.map((l) => l.resource), merged.withheldHosts);
    const lds = buildListeners(merged.resources.map((l) => l.resource), merged.withheldHosts, this.listeners);
    // Notes repeat on every re-read of the directory: log each once while it stands.
    const notes = new Set([...snapshot.notes.map((n) => `${n.file}: ${n.message}`), ...lds.notes]);
    for (const n of notes) if (!this.loggedNotes.has(n)) this.logger.log('warn', n);
    this.loggedNotes = notes;
    const { changedRoutes, clustersChanged } = this.server.setConfig(built);
    const listenersChanged = this.server.setListeners(lds.listeners);
    this.server.setAuthorizationPolicies(merged.resources.map((l) => l.resource).filter((r): r is AuthorizationPolicyResource => r.kind === 'AuthorizationPolicy'));
    if (changedRoutes.length || clustersChanged || listenersChanged) {
      this.logger.log('info', `config updated: ${changedRoutes.length} route configs changed${clustersChanged ? ', clusters changed' : ''}${listenersChanged ? `, listeners changed (${lds.listeners.length})` : ''}`, { routes: changedRoutes });
    }
  }

  stop(): void {
    this.closeTls?.();
    this.source.stop();
    this.server.stop();
  }
}
