// The virtual listeners of a sidecar (Istio's 15001 outbound and 15006 inbound): iptables
// redirects captured connections here, and each is handed, by its original destination, to the
// listener for that service port, or passed through as plain TCP when none serves it.

import net from 'node:net';
import type { Logger } from '../core/logger';
import { boundPort, listenOn, type ListenBinder } from '../core/listen';
import type { Listener } from '../proxy/listener';
import type { TrafficDirection, VirtualListenerConfig } from '../config/types';
import { originalDestination, requireOriginalDestination, type OriginalDestination } from './original-destination';
import { passThrough } from './passthrough';
import type { CaptureStats, StatsStore } from '../core/stats';
import { isOwnConnection } from './own-connections';
import { Waiters } from '../core/waiters';

export class CaptureListener {
  private readonly server: net.Server;
  readonly counts: CaptureStats;
  private readonly passthroughSockets = new Set<net.Socket>();
  private draining = false;
  private loopWarnedAt = Number.NEGATIVE_INFINITY;
  private heldPort: number | undefined;
  /** Drains waiting for the last pass-through connection to close. */
  private readonly idle = new Waiters();

  /**
   * `route` finds the listener for an original destination among this direction's listeners.
   * Throws MELTEMI_CAPTURE_UNAVAILABLE when the original-destination addon is missing.
   */
  constructor(readonly direction: TrafficDirection, readonly config: VirtualListenerConfig,
    private readonly route: (dst: OriginalDestination) => Listener | undefined, private readonly logger: Logger, stats: StatsStore) {
    requireOriginalDestination();
    this.counts = stats.capture(direction);
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  get name(): string {
    return `virtual_${this.direction}`;
  }

  private accept(socket: net.Socket): void {
    if (this.draining) {
      this.counts.refused++;
      socket.destroy();
      return;
    }
    const dst = originalDestination(socket);
    if (!dst || (dst.port === this.port && (dst.address === this.config.address || this.config.address === '0.0.0.0'))) {
      // Dialled directly: there is nowhere to send it (Istio's BlackHoleCluster for 15001 itself).
      this.counts.noOriginalDestination++;
      socket.destroy();
      return;
    }
    // Inbound, the proxy's own connection to this pod's address is sent here on purpose (a pod
    // calling its own service): only outbound is a loop.
    if (this.direction === 'outbound' && isOwnConnection(socket, dst)) {
      this.counts.loop++;
      const now = performance.now();
      if (now - this.loopWarnedAt > 60_000) {
        this.loopWarnedAt = now;
        this.logger.log('error', `capture loop: this proxy's own connection to ${dst.address}:${dst.port} was redirected back to it; the capture rules must exempt the proxy's UID or GID (meltemi iptables --proxy-uid)`);
      }
      socket.destroy();
      return;
    }
    const listener = this.route(dst);
    if (listener && listener.adopt(socket, dst)) {
      this.counts.listener++;
      return;
    }
    this.passthroughSockets.add(socket);
    socket.once('close', () => {
      this.passthroughSockets.delete(socket);
      if (this.passthroughSockets.size === 0) this.idle.release();
    });
    passThrough(socket, dst, {
      // Inbound: to the application at the address it was dialled on, from 127.0.0.6, which the
      // rules do not capture again (the proxy's UID alone would send it back to the inbound port).
      localAddress: this.direction === 'inbound' ? this.config.passthroughSource : undefined,
      connectTimeoutMs: this.config.connectTimeoutMs,
      idleTimeoutMs: this.config.idleTimeoutMs,
    }, this.counts);
  }

  async listen(binder: ListenBinder | undefined): Promise<void> {
    const what = { name: this.name, address: this.config.address, port: this.config.port };
    if (binder) this.heldPort = await binder(this.server, what);
    else await listenOn(this.server, this.config.port, this.config.address, `capture listener ${this.name}`);
  }

  get port(): number {
    return this.heldPort ?? boundPort(this.server, this.config.port);
  }

  get activeConnections(): number {
    return this.passthroughSockets.size;
  }

  /**
   * The outbound side stays open while draining: the application's last calls while its pod
   * shuts down must still go out (Istio drains inbound only).
   */
  get keepsAcceptingWhileDraining(): boolean {
    return this.direction === 'outbound';
  }

  /** Drain: inbound stops accepting; pass-through connections go on until they end or close() is called. */
  startDrain(): void {
    if (this.keepsAcceptingWhileDraining) return;
    this.draining = true;
    if (this.server.listening) this.server.close();
  }

  /** Resolves once no pass-through connection is open. */
  whenIdle(): Promise<void> {
    return this.idle.wait(this.passthroughSockets.size === 0);
  }

  async close(): Promise<void> {
    this.draining = true;
    const closed = this.server.listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    for (const s of this.passthroughSockets) s.destroy();
    await closed;
  }
}

/** The names the virtual listeners' sockets go by (workers are handed them by name). */
export function captureListenerNames(capture: { readonly outbound: unknown; readonly inbound: unknown }): string[] {
  return [...(capture.outbound ? ['virtual_outbound'] : []), ...(capture.inbound ? ['virtual_inbound'] : [])];
}
