// The sidecar sections: `capture:` (the virtual listeners), `drain:`, and the listener and
// cluster `proxy_protocol` fields.

import net from 'node:net';
import type { Field } from './field';
import type { CaptureConfig, DrainConfig, ProxyProtocolAcceptConfig, VirtualListenerConfig } from './types';

const MAX_PORT = 65535;

/** Istio's terminationDrainDuration: how long a sidecar drains before it exits anyway. */
export const DRAIN_DEFAULTS: DrainConfig = { timeoutMs: 5_000, minDurationMs: 0 };
export const CAPTURE_DEFAULTS: CaptureConfig = { outbound: undefined, inbound: undefined };

export function readCapture(f: Field): CaptureConfig {
  if (!f.present) return CAPTURE_DEFAULTS;
  f.only(['outbound', 'inbound']);
  const capture = {
    // REDIRECT in OUTPUT sends to 127.0.0.1; in PREROUTING, to the address of the interface the packet came in on.
    outbound: f.child('outbound').or((c) => readVirtual(c, '127.0.0.1', 15001, false), undefined),
    inbound: f.child('inbound').or((c) => readVirtual(c, '0.0.0.0', 15006, true), undefined),
  };
  if (capture.outbound && capture.inbound && capture.outbound.port === capture.inbound.port) f.child('inbound').child('port').fail(`must differ from capture.outbound.port (${capture.outbound.port})`);
  if (!capture.outbound && !capture.inbound) f.fail('needs outbound, inbound or both');
  return capture;
}

function readVirtual(f: Field, address: string, port: number, inbound: boolean): VirtualListenerConfig {
  f.only(['address', 'port', 'connect_timeout', 'idle_timeout', ...(inbound ? ['passthrough_source'] : [])]);
  const ip = (c: Field) => {
    const a = c.string({ nonEmpty: true });
    if (net.isIP(a) === 0) c.fail('must be an IP address');
    return a;
  };
  return {
    address: f.child('address').or(ip, address),
    port: f.child('port').or((c) => c.integer(1, MAX_PORT), port),
    passthroughSource: inbound ? f.child('passthrough_source').or(ip, '127.0.0.6') : undefined,
    connectTimeoutMs: f.child('connect_timeout').or((c) => c.durationMs(), 10_000),
    // Envoy's tcp_proxy idle_timeout default.
    idleTimeoutMs: f.child('idle_timeout').or((c) => c.durationMs(), 3_600_000),
  };
}

export function readDrain(f: Field): DrainConfig {
  if (!f.present) return DRAIN_DEFAULTS;
  f.only(['timeout', 'min_duration']);
  const timeoutMs = f.child('timeout').or((c) => c.durationMs(), DRAIN_DEFAULTS.timeoutMs);
  const minDurationMs = f.child('min_duration').or((c) => c.durationMs(), DRAIN_DEFAULTS.minDurationMs);
  if (minDurationMs > timeoutMs) f.child('min_duration').fail(`must not exceed drain.timeout (${timeoutMs} ms)`);
  return { timeoutMs, minDurationMs };
}

/** A listener's `proxy_protocol`: true, or `{ allow_without: bool }`. */
export function readProxyProtocolAccept(f: Field): ProxyProtocolAcceptConfig | undefined {
  if (typeof f.value === 'boolean') return f.value ? { allowWithout: false } : undefined;
  f.only(['allow_without']);
  return { allowWithout: f.child('allow_without').or((c) => c.boolean(), false) };
}

/** A cluster's `proxy_protocol`: v1 or v2. */
export function readProxyProtocolSend(f: Field): 1 | 2 {
  return f.oneOf(['v1', 'v2'] as const) === 'v1' ? 1 : 2;
}
