// The control agent's RDS side: one subscription per listener that uses RDS, sharing the agent's
// gRPC channel. Listeners from LDS subscribe and unsubscribe while the agent runs.

import * as grpc from '@grpc/grpc-js';
import type { XdsConfig } from '../config/types';
import type { DecodedRoutes } from './route-tunnel';
import type { Logger } from '../core/logger';
import { RdsStatus, RdsSubscription } from './rds-subscription';

export class RdsAgent {
  private readonly subscriptions: RdsSubscription[] = [];
  private started = false;

  constructor(private readonly client: grpc.Client, private readonly xds: XdsConfig, private readonly logger: Logger) {}

  subscribe(routeConfigName: string, apply: (decoded: DecodedRoutes, version: string) => void): RdsSubscription {
    const s = new RdsSubscription(this.client, this.xds, routeConfigName, apply, this.logger);
    this.subscriptions.push(s);
    if (this.started) s.start();
    return s;
  }

  unsubscribe(s: RdsSubscription): void {
    const i = this.subscriptions.indexOf(s);
    if (i >= 0) this.subscriptions.splice(i, 1);
    s.stop();
  }

  start(): void {
    this.started = true;
    for (const s of this.subscriptions) s.start();
  }

  /**
   * Resolves when every subscription applied its first routes, or after `timeoutMs`: listeners
   * are warmed the way Envoy warms them, so traffic does not meet an empty route table.
   */
  async ready(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
    const all = Promise.all(this.subscriptions.map((s) => s.ready)).then(() => true);
    const ok = await Promise.race([all, timeout]);
    clearTimeout(timer);
    return ok;
  }

  statuses(): RdsStatus[] {
    return this.subscriptions.map((s) => ({ ...s.status, connected: s.connected }));
  }

  stop(): void {
    this.started = false;
    for (const s of this.subscriptions) s.stop();
  }
}
