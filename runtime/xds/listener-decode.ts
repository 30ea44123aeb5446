// An Envoy Listener from LDS as a meltemi listener, when its network filter is Aeraki's
// MetaProtocolProxy (the bytes, or the TypedStruct Aeraki's EnvoyFilters put there). Listeners
// of other kinds (HTTP, TCP proxy) are not meltemi's and are passed over; a MetaProtocol listener
// meltemi cannot serve as asked (TLS, filter chain matching, an unknown filter) is an error
// naming the field of the Listener, so the update is NACKed with it.

import { isIP } from 'node:net';
import type { ListenerConfig, RouteConfiguration } from '../config/types';
import { ConfigError } from '../core/errors';
import { durationToMs, envoyType, toPlain, TYPE_META_PROTOCOL_PROXY, TYPED_STRUCT_URLS } from './envoy-protos';
import { decodeFilters } from './meta-protocol-filters';
import { decodeAccessLogs } from './access-log-decode';
import { fromProtoJson, structToJson } from './proto-json';
import { decodeTunnel } from './route-tunnel';

type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const MPP_NAMES = new Set(['aeraki.meta_protocol_proxy', 'envoy.filters.network.meta_protocol_proxy']);
/** Network filters that only observe; Istio puts them before the proxy filter. */
const OBSERVE_ONLY = new Set(['istio.metadata_exchange', 'envoy.filters.network.metadata_exchange', 'istio.stats', 'envoy.filters.network.tcp_stats']);
const CODEC_PREFIX = 'aeraki.meta_protocol.codec.';
const NAME = /^[A-Za-z0-9_.|:-]+$/;
/** Longer names are refused: they are echoed in logs, NACKs and metric labels. */
export const MAX_NAME_LENGTH = 256;
/** Listener filters that only look at the first bytes (Istio adds them); any other changes the stream. */
const HARMLESS_LISTENER_FILTERS = new Set(['envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector', 'envoy.filters.listener.original_dst']);

export type DecodedListener =
  | {
    readonly kind: 'listener';
    readonly config: ListenerConfig;
    /** Codec protocols to try, preferred first (protocol.name, then the codec's name). */
    readonly protocols: readonly string[];
    readonly notes: readonly string[];
  }
  | {
    readonly kind: 'passed-over';
    readonly name: string;
    readonly reason: string;
    /** Not a MetaProtocol listener at all (routine), rather than one meltemi cannot take yet. */
    readonly routine: boolean;
  };

/** `l`: a decoded envoy.config.listener.v3.Listener (plain). Throws a ConfigError for a MetaProtocol listener that cannot be served. */
export function decodeListener(l: Plain): DecodedListener {
  const name = l.name;
  if (typeof name !== 'string' || !name) throw new ConfigError('name', 'is required');
  if (name.length > MAX_NAME_LENGTH) throw new ConfigError('name', `is longer than ${MAX_NAME_LENGTH} characters`);
  if (!NAME.test(name)) throw new ConfigError('name', `"${name}" has characters other than letters, digits and _ . | : -`);
  const chains: Array<{ chain: Plain; path: string }> = [
    ...((l.filter_chains ?? []) as Plain[]).map((chain, i) => ({ chain, path: `filter_chains[${i}]` })),
    ...(l.default_filter_chain ? [{ chain: l.default_filter_chain as Plain, path: 'default_filter_chain' }] : []),
  ].filter(({ chain }) => ((chain.filters ?? []) as Plain[]).some(isMetaProtocolProxy));
  if (chains.length === 0) return { kind: 'passed-over', name, reason: 'no MetaProtocolProxy network filter', routine: true };
  if (chains.length > 1) throw new ConfigError(chains[1].path, 'only one filter chain may carry a MetaProtocolProxy (filter chain matching is not supported)');
  if (l.bind_to_port?.value === false || l.deprecated_v1?.bind_to_port?.value === false) {
    return { kind: 'passed-over', name, reason: 'bind_to_port is false (a listener behind traffic capture: meltemi serves those from its own config, not from LDS yet)', routine: false };
  }
  const sock = l.address?.socket_address;
  if (!sock?.address || !sock.port_value) throw new ConfigError('address.socket_address', 'needs address and port_value');
  if (sock.protocol === 'UDP') throw new ConfigError('address.socket_address.protocol', 'UDP is not supported');
  if (!isIP(sock.address)) throw new ConfigError('address.socket_address.address', `"${String(sock.address).slice(0, 64)}" is not an IP address`);
  if (sock.port_value > 65535) throw new ConfigError('address.socket_address.port_value', 'must be at most 65535');
  const { chain, path } = chains[0];
  // What would restrict or transform the connection must be enforced or refused, never dropped.
  if (chain.transport_socket) throw new ConfigError(`${path}.transport_socket`, 'TLS on a MetaProtocol listener is not supported yet');
  if (chain.filter_chain_match && Object.keys(chain.filter_chain_match).length > 0) {
    throw new ConfigError(`${path}.filter_chain_match`, 'is not supported (meltemi would serve every connection, not only those it matches)');
  }
  ((l.listener_filters ?? []) as Plain[]).forEach((f, i) => {
    if (!HARMLESS_LISTENER_FILTERS.has(f.name)) throw new ConfigError(`listener_filters[${i}].name`, `${String(f.name).slice(0, 128)} is not supported`);
  });
  const notes: string[] = [];
  if (l.per_connection_buffer_limit_bytes !== undefined) notes.push('per_connection_buffer_limit_bytes: not acted on (meltemi bounds connections by max_frame_size and the upstream limits)');
  const filters = chain.filters as Plain[];
  const at = filters.findIndex(isMetaProtocolProxy);
  if (at !== filters.length - 1) throw new ConfigError(`${path}.filters[${at + 1}]`, 'the MetaProtocolProxy must be the last network filter');
  filters.slice(0, at).forEach((f, i) => {
    if (!OBSERVE_ONLY.has(f.name)) throw new ConfigError(`${path}.filters[${i}].name`, `network filter ${String(f.name).slice(0, 128)} is not supported before a MetaProtocolProxy`);
    notes.push(`${path}.filters[${i}]: ${String(f.name)} is not run by meltemi; passed over`);
  });
  const mppPath = `${path}.filters[${at}].typed_config`;
  const mpp = metaProtocolProxy(filters[at].typed_config, mppPath);
  return { kind: 'listener', ...listenerConfig(name, sock, mpp, mppPath, notes, typeof l.traffic_direction === 'string' ? l.traffic_direction : undefined), notes };
}

function isMetaProtocolProxy(f: Plain): boolean {
  const any = f.typed_config as Plain | undefined;
  if (any?.type_url === TYPE_META_PROTOCOL_PROXY) return true;
  if (any && TYPED_STRUCT_URLS.includes(any.type_url)) {
    try {
      return toPlain(envoyType('TypedStruct'), any.value ?? new Uint8Array()).type_url === TYPE_META_PROTOCOL_PROXY;
    } catch {
      return MPP_NAMES.has(f.name); // undecodable: decided by the name, and reported when read
    }
  }
  return MPP_NAMES.has(f.name);
}

/** The MetaProtocolProxy as a plain object, from its bytes or from a TypedStruct's JSON. */
function metaProtocolProxy(any: Plain | undefined, path: string): Plain {
  const type = envoyType('MetaProtocolProxy');
  if (any?.type_url === TYPE_META_PROTOCOL_PROXY) return toPlain(type, any.value ?? new Uint8Array());
  if (any && TYPED_STRUCT_URLS.includes(any.type_url)) {
    const ts = toPlain(envoyType('TypedStruct'), any.value ?? new Uint8Array());
    if (ts.type_url !== TYPE_META_PROTOCOL_PROXY) throw new ConfigError(`${path}.type_url`, `must be ${TYPE_META_PROTOCOL_PROXY}`);
    // Through bytes, so both forms read the same (oneof names, defaults) from here on.
    const plain = fromProtoJson(type, structToJson(ts.value as Plain | undefined), `${path}.value`);
    return toPlain(type, type.encode(type.fromObject(plain)).finish());
  }
  throw new ConfigError(`${path}.type_url`, `${String(any?.type_url ?? '(none)')}: expected ${TYPE_META_PROTOCOL_PROXY} or a TypedStruct of it`);
}

function listenerConfig(name: string, sock: Plain, mpp: Plain, path: string, notes: string[], direction: string | undefined): { config: ListenerConfig; protocols: string[] } {
  const codecName = (c: Plain | undefined) => (typeof c?.name === 'string' && c.name.startsWith(CODEC_PREFIX) ? c.name.slice(CODEC_PREFIX.length) : c?.name);
  const protocols = [...new Set([mpp.protocol?.name, mpp.application_protocol, codecName(mpp.protocol?.codec), codecName(mpp.codec)]
    .filter((p): p is string => typeof p === 'string' && p !== ''))];
  if (protocols.length === 0) throw new ConfigError(`${path}.protocol.name`, 'is required (the application protocol, which names the codec)');
  let rds: ListenerConfig['rds'];
  let routeConfig: RouteConfiguration = { name: '', routes: [] };
  if (mpp.route_specifier === 'rds') {
    const routeConfigName = mpp.rds?.route_config_name;
    if (typeof routeConfigName !== 'string' || !routeConfigName) throw new ConfigError(`${path}.rds.route_config_name`, 'is required');
    rds = { routeConfigName, validateClusters: false };
    routeConfig = { name: routeConfigName, routes: [] };
  } else if (mpp.route_specifier === 'route_config') {
    routeConfig = staticRoutes(mpp.route_config, `${path}.route_config`);
  } else {
    throw new ConfigError(path, 'needs rds or route_config');
  }
  const idle = mpp.idle_timeout as Plain | undefined;
  const chain = decodeFilters(mpp.meta_protocol_filters ?? [], `${path}.meta_protocol_filters`);
  notes.push(...chain.notes);
  const accessLog = decodeAccessLogs(mpp.access_log ?? [], `${path}.access_log`, notes);
  // MetaProtocol Proxy's tracing: its random sampling is this listener's rate; the collector is telemetry.tracing's.
  const sampling = mpp.tracing?.random_sampling?.value;
  if (sampling !== undefined && !(typeof sampling === 'number' && sampling >= 0 && sampling <= 100)) {
    throw new ConfigError(`${path}.tracing.random_sampling.value`, `must be between 0 and 100 (percent), not ${String(sampling)}`);
  }
  if (mpp.tracing?.provider !== undefined) notes.push(`${path}.tracing.provider: spans go to telemetry.tracing's OTLP collector, not to this provider`);
  return {
    protocols,
    config: {
      name,
      address: sock.address,
      port: sock.port_value,
      protocol: protocols[0],
      codecConfig: {},
      maxFrameSize: 64 * 1024 * 1024,
      upstreamConnection: 'shared',
      maxInflightPerConnection: 4096,
      maxConnections: 10_000_000,
      // MetaProtocol Proxy: no idle_timeout, no idle timer.
      idleTimeoutMs: idle ? Math.round(durationToMs(idle)) : 0,
      filters: chain.filters,
      routeConfig,
      rds,
      trafficDirection: direction === 'INBOUND' ? 'inbound' : 'outbound',
      metadataExchange: chain.metadataExchange,
      ...(chain.istioStats ? { istioMetrics: true } : {}),
      ...(chain.istioStats?.destinationService !== undefined ? { destinationService: chain.istioStats.destinationService } : {}),
      accessLog,
      ...(mpp.tracing !== undefined ? { tracingSamplingPercent: typeof sampling === 'number' && sampling >= 0 && sampling <= 100 ? sampling : 100 } : {}),
    },
  };
}

/** Aeraki's static route_config, read through the RDS tunnel decoder, with errors named as written. */
function staticRoutes(rc: Plain, path: string): RouteConfiguration {
  const tunnel = {
    name: rc.name ?? '',
    virtual_hosts: [{
      routes: ((rc.routes ?? []) as Plain[]).map((r) => ({
        name: r.name,
        match: { headers: r.match?.metadata ?? [] },
        route: r.route ? { ...r.route, hash_policy: ((r.route.hash_policy ?? []) as string[]).map((h) => ({ header: { header_name: h } })) } : undefined,
        request_headers_to_add: ((r.request_mutation ?? []) as Plain[]).map((kv) => ({ header: kv })),
      })),
    }],
  };
  try {
    return decodeTunnel(tunnel).routes;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const field = err.field
      .replace(/^virtual_hosts\[0\]\.routes/, 'routes')
      .replace('.match.headers', '.match.metadata')
      .replace(/\.request_headers_to_add\[(\d+)\]\.header/, '.request_mutation[$1]')
      .replace(/\.hash_policy\[(\d+)\]\.header\.header_name/, '.hash_policy[$1]');
    throw new ConfigError(`${path}.${field}`, err.line.slice(err.field.length + 2));
  }
}
