// What telemetry reads of a request once it is over: the request, how it ended, and its answer.
// Built only when an access log or a span needs it.

import type { Metadata } from '../codec/metadata';
import { wellKnownKeyId } from '../codec/well-known-keys';
import type { ActiveRequest } from '../proxy/active-request';

export interface RequestRecord {
  readonly req: ActiveRequest;
  readonly listener: string;
  /** The application protocol (the codec's). */
  readonly protocol: string;
  readonly durationMs: number;
  readonly responseBytes: number;
  /** The codec's response status: 0 ok, 1 error (MetaProtocol Proxy's response codes). */
  readonly code: number;
  readonly flags: string;
  readonly details: string;
  /** The decoded upstream answer (absent for local replies); valid during the call only. */
  readonly responseMeta: Metadata | undefined;
  /** When the request was read, in ms since the epoch. */
  readonly startMs: number;
  readonly downstreamRemote: string;
  readonly downstreamLocal: string;
  /** The request's method, service and key, looked up once per record (several operators read them). */
  method?: string | null;
  service?: string | null;
  key?: string | null;
}

export function recordMethod(r: RequestRecord): string | null {
  return r.method !== undefined ? r.method : (r.method = methodOf(r.req.meta) ?? null);
}

export function recordService(r: RequestRecord): string | null {
  return r.service !== undefined ? r.service : (r.service = serviceOf(r.req.meta) ?? null);
}

export function recordKey(r: RequestRecord): string | null {
  return r.key !== undefined ? r.key : (r.key = keyOf(r.req.meta) ?? null);
}

const SERVICE = wellKnownKeyId('service');
const METHOD = wellKnownKeyId('method');
const COMMAND = wellKnownKeyId('command');
const KEY = wellKnownKeyId('key');
const INTERFACE = wellKnownKeyId('interface');

/** The method a request calls, for logs and spans: Dubbo/Thrift `method`, Redis `command`. */
export function methodOf(meta: Metadata | null): string | undefined {
  if (meta === null) return undefined;
  return meta.getWellKnown(METHOD, 'method') ?? meta.getWellKnown(COMMAND, 'command');
}

/** The service it calls: Dubbo `interface`, or `service`. */
export function serviceOf(meta: Metadata | null): string | undefined {
  if (meta === null) return undefined;
  return meta.getWellKnown(INTERFACE, 'interface') ?? meta.getWellKnown(SERVICE, 'service');
}

/** The key a request names (Redis, Memcached). */
export function keyOf(meta: Metadata | null): string | undefined {
  return meta === null ? undefined : meta.getWellKnown(KEY, 'key');
}
