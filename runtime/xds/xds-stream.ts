// What every xDS subscription shares: a bidirectional gRPC stream of Envoy DiscoveryRequests and
// DiscoveryResponses that reconnects with back-off (reset once a response arrives) until stopped.
// Subclasses write their requests when the stream opens and handle each response.

import * as grpc from '@grpc/grpc-js';
import type { XdsConfig } from '../config/types';
import type { Logger } from '../core/logger';
import { Backoff } from './backoff';
import { envoyType, fromPlain, toPlain } from './envoy-protos';

export type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What /config_dump shows for one subscribed resource type or name. */
export interface UpdateStatus {
  /** Version in use ('' before the first one). */
  versionInfo: string;
  lastUpdated: string | undefined;
  /** The last rejected update, while it is the latest one received. */
  errorState: { versionInfo: string; details: string; lastUpdateAttempt: string } | undefined;
  acks: number;
  nacks: number;
}

export function newUpdateStatus(): UpdateStatus {
  return { versionInfo: '', lastUpdated: undefined, errorState: undefined, acks: 0, nacks: 0 };
}

export function recordAccepted(status: UpdateStatus, version: string): void {
  status.versionInfo = version;
  status.lastUpdated = new Date().toISOString();
  status.errorState = undefined;
  status.acks++;
}

export function recordRejected(status: UpdateStatus, version: string, details: string): void {
  status.errorState = { versionInfo: version, details, lastUpdateAttempt: new Date().toISOString() };
  status.nacks++;
}

/** Envoy's code for a rejected update in error_detail. */
export const INVALID_ARGUMENT = 3;

export abstract class XdsStream<C extends Pick<XdsConfig, 'initialBackoffMs' | 'maxBackoffMs'> = XdsConfig> {
  connected = false;
  private stream: grpc.ClientDuplexStream<Plain, Plain> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff: Backoff;

  constructor(
    private readonly client: grpc.Client,
    private readonly method: string,
    protected readonly xds: C,
    protected readonly logger: Logger,
    private readonly label: string,
  ) {
    this.backoff = new Backoff(xds.initialBackoffMs, xds.maxBackoffMs);
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stream?.cancel();
    this.stream = undefined;
  }

  /** Writes the subscription requests of a new stream. */
  protected abstract onOpen(): void;

  protected abstract onResponse(resp: Plain): void;

  protected write(request: Plain): void {
    this.stream?.write(request);
  }

  private connect(): void {
    const stream = this.client.makeBidiStreamRequest<Plain, Plain>(
      this.method,
      (m) => Buffer.from(fromPlain(envoyType('DiscoveryRequest'), m)),
      (b) => toPlain(envoyType('DiscoveryResponse'), b),
    );
    this.stream = stream;
    stream.on('data', (resp: Plain) => {
      this.connected = true;
      this.backoff.reset();
      this.onResponse(resp);
    });
    stream.on('error', (err: grpc.ServiceError) => {
      // An unreachable server is routine (reconnects follow); anything else, such as a message over the size limit, is not.
      const routine = err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.CANCELLED;
      if (!this.stopped) this.logger.log(routine ? 'debug' : 'warn', `${this.label} stream failed: ${err.details || err.message}`);
    });
    // Every call end emits 'status' (a duplex whose write side is open may never emit 'close').
    stream.on('status', () => this.onClosed(stream));
    this.onOpen();
  }

  private onClosed(stream: grpc.ClientDuplexStream<Plain, Plain>): void {
    if (this.stream !== stream) return;
    this.connected = false;
    this.stream = undefined;
    if (this.stopped) return;
    const delay = this.backoff.delay();
    this.logger.log('debug', `${this.label}: reconnecting in ${delay} ms; the last accepted config keeps serving`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.retryTimer.unref();
  }
}
