// One RDS subscription: a SotW stream on RouteDiscoveryService/StreamRoutes for one
// route_config_name, as Envoy and MetaProtocol Proxy open it. Each response is decoded from the
// Aeraki route tunnel and validated; a good one is applied and ACKed, a bad one (or one that
// `apply` throws for) NACKed with the reason (the last accepted routes keep serving). The stream reconnects with back-off and the
// last accepted routes keep serving while it is down.

import * as grpc from '@grpc/grpc-js';
import type { XdsConfig } from '../config/types';
import type { Logger } from '../core/logger';
import { envoyType, RDS_METHOD, toPlain, TYPE_ROUTE_CONFIGURATION } from './envoy-protos';
import { INVALID_ARGUMENT, newUpdateStatus, Plain, recordAccepted, recordRejected, UpdateStatus, XdsStream } from './xds-stream';
import { decodeTunnel, DecodedRoutes } from './route-tunnel';
import { nodeOf } from './node';

export interface RdsStatus extends UpdateStatus {
  readonly routeConfigName: string;
  connected: boolean;
}

export class RdsSubscription extends XdsStream {
  readonly status: RdsStatus;
  private firstUpdate: (() => void) | undefined;
  /** Resolves once the first routes were applied. */
  readonly ready: Promise<void> = new Promise((resolve) => { this.firstUpdate = resolve; });

  constructor(
    client: grpc.Client,
    xds: XdsConfig,
    readonly routeConfigName: string,
    private readonly apply: (decoded: DecodedRoutes, version: string) => void,
    logger: Logger,
  ) {
    super(client, RDS_METHOD, xds, logger, `RDS ${routeConfigName}`);
    this.status = { routeConfigName, connected: false, ...newUpdateStatus() };
  }

  protected onOpen(): void {
    // Envoy resends the version it holds on a new stream, so the server can skip an identical push.
    this.write({
      version_info: this.status.versionInfo,
      node: nodeOf(this.xds),
      resource_names: [this.routeConfigName],
      type_url: TYPE_ROUTE_CONFIGURATION,
    });
  }

  protected onResponse(resp: Plain): void {
    const nonce = String(resp.nonce ?? '');
    const version = String(resp.version_info ?? '');
    let error: string | undefined;
    try {
      const decoded = this.decode(resp);
      const routes = decoded.routes;
      this.apply(decoded, version);
      recordAccepted(this.status, version);
      this.firstUpdate?.();
      this.logger.log('info', `RDS ${this.routeConfigName}: applied version ${version} (${routes.routes.length} routes)`);
    } catch (err) {
      error = (err as Error).message;
      recordRejected(this.status, version, error);
      this.logger.log('warn', `RDS ${this.routeConfigName}: rejected version ${version}: ${error}`);
    }
    this.write({
      version_info: this.status.versionInfo,
      response_nonce: nonce,
      resource_names: [this.routeConfigName],
      type_url: TYPE_ROUTE_CONFIGURATION,
      ...(error ? { error_detail: { code: INVALID_ARGUMENT, message: error } } : {}),
    });
  }

  private decode(resp: Plain): DecodedRoutes {
    if (resp.type_url !== TYPE_ROUTE_CONFIGURATION) throw new Error(`type_url ${String(resp.type_url)}: expected ${TYPE_ROUTE_CONFIGURATION}`);
    const resources = (resp.resources ?? []) as Array<{ type_url?: string; value?: Uint8Array }>;
    if (resources.length !== 1) throw new Error(`resources: expected exactly one RouteConfiguration, got ${resources.length}`);
    const any = resources[0];
    if (any.type_url !== TYPE_ROUTE_CONFIGURATION) throw new Error(`resources[0].type_url ${String(any.type_url)}: expected ${TYPE_ROUTE_CONFIGURATION}`);
    const rc = toPlain(envoyType('RouteConfiguration'), any.value ?? new Uint8Array());
    if (rc.name !== this.routeConfigName) throw new Error(`resources[0].name "${String(rc.name)}" is not the subscribed "${this.routeConfigName}"`);
    return decodeTunnel(rc);
  }
}
