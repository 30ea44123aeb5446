// meltemi's control plane: resources from a source (a watched directory), built into routes and
// clusters the way Aeraki builds them, served over RDS and ADS.

import type { Logger } from '../core/logger';
import { buildConfig } from './route-builder';
import type { ResourceSnapshot, ResourceSource } from './resource-source';
import { XdsServer } from './xds-server';

export class ControlPlane {
  readonly server: XdsServer;
  lastSnapshot: ResourceSnapshot | undefined;
  port = 0;

  constructor(private readonly source: ResourceSource, private readonly logger: Logger) {
    this.server = new XdsServer(logger);
  }

  async start(address: string, port: number): Promise<number> {
    await this.source.start((snapshot) => this.apply(snapshot));
    this.port = await this.server.listen(address, port);
    this.logger.log('info', `control plane serving RDS and ADS on ${address}:${this.port}`);
    return this.port;
  }

  private apply(snapshot: ResourceSnapshot): void {
    if (snapshot.unreadable && this.lastSnapshot) {
      // A directory that vanished or cannot be read says nothing about the resources: keep serving.
      for (const e of snapshot.errors) this.logger.log('error', `${e.message}; the last good resources keep serving`, { dir: e.file });
      return;
    }
    this.lastSnapshot = snapshot;
    for (const e of snapshot.errors) this.logger.log('error', `skipped resource in ${e.file}: ${e.message}`);
    const built = buildConfig(snapshot.resources);
    const { changedRoutes, clustersChanged } = this.server.setConfig(built);
    if (changedRoutes.length || clustersChanged) {
      this.logger.log('info', `config updated: ${changedRoutes.length} route configs changed${clustersChanged ? ', clusters changed' : ''}`, { routes: changedRoutes });
    }
  }

  stop(): void {
    this.source.stop();
    this.server.stop();
  }
}
