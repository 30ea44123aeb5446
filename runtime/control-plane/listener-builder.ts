// The control plane's LDS side: for every ServiceEntry MetaProtocol port, an Envoy Listener whose
// network filter is a MetaProtocolProxy, written as Aeraki's EnvoyFilters put it there (a
// TypedStruct holding the config as protobuf JSON): RDS for the routes, the MetaRouter's
// localRateLimit as Aeraki's local rate limit filter, then the router.
//
// Where meltemi differs from Aeraki: Aeraki patches Istio's `<vip>_<port>` listeners, which
// receive traffic through capture and exist only for services with a VIP. meltemi binds its
// listeners itself: at the service's first loopback address (so services can share a port on
// 127.0.0.x), else at the control plane's listener address. And the rate limit sits on that
// listener (the client side), where Aeraki puts it on the server's inbound sidecar.

import { envoyType, TYPE_LOCAL_RATE_LIMIT, TYPE_META_PROTOCOL_PROXY, TYPED_STRUCT_URLS } from '../xds/envoy-protos';
import { AERAKI_LOCAL_RATE_LIMIT, AERAKI_ROUTER } from '../xds/meta-protocol-filters';
import { Json, jsonToStruct } from '../xds/proto-json';
import type { ApplicationProtocol, LocalRateLimit, MetaRouter, Resource, ServiceEntry, StringMatch, TokenBucket } from './resources';
import { metaProtocolOf } from './route-builder';

type Plain = Record<string, unknown>;

export interface ListenerOptions {
  /** Where a service's listener binds when its ServiceEntry has no loopback address. */
  readonly address: string;
}

export interface BuiltListeners {
  /** envoy.config.listener.v3.Listener plain objects, sorted by name. */
  readonly listeners: Plain[];
  /** Listeners not served, and why (a port two services want). */
  readonly notes: string[];
}

const isLoopback = (a: string) => /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || a === '::1';

export function buildListeners(resources: readonly Resource[], withheldHosts: ReadonlySet<string>, opts: ListenerOptions): BuiltListeners {
  const entries = resources.filter((r): r is ServiceEntry => r.kind === 'ServiceEntry').sort((a, b) => a.host.localeCompare(b.host));
  const routers = resources.filter((r): r is MetaRouter => r.kind === 'MetaRouter');
  const protocols = resources.filter((r): r is ApplicationProtocol => r.kind === 'ApplicationProtocol');
  const byName = new Map<string, { host: string; listener: Plain }>();
  const notes: string[] = [];
  for (const se of entries) {
    if (withheldHosts.has(se.host)) continue;
    const address = se.addresses.find(isLoopback) ?? opts.address;
    const rateLimit = routers.find((r) => r.host === se.host && r.localRateLimit)?.localRateLimit;
    for (const port of se.ports) {
      const protocol = metaProtocolOf(port.name);
      if (!protocol) continue;
      const name = `${address}_${port.number}`;
      const taken = byName.get(name);
      if (taken) {
        notes.push(`ServiceEntry ${se.namespace}/${se.name}: port ${port.number} on ${address} is already ${taken.host}'s; no listener for ${se.host}:${port.number} (give the service a loopback address, e.g. addresses: [127.0.0.2])`);
        continue;
      }
      const codec = protocols.find((p) => p.protocol === protocol)?.codec ?? `aeraki.meta_protocol.codec.${protocol}`;
      byName.set(name, { host: se.host, listener: listener(name, address, port.number, metaProtocolProxy(se.host, port.number, protocol, codec, rateLimit)) });
    }
  }
  return { listeners: [...byName.keys()].sort().map((n) => byName.get(n)!.listener), notes };
}

/** The MetaProtocolProxy as Aeraki writes it (protobuf JSON, lowerCamelCase). */
function metaProtocolProxy(host: string, port: number, protocol: string, codec: string, rateLimit: LocalRateLimit | undefined): { [key: string]: Json } {
  return {
    statPrefix: `outbound|${port}||${host}`,
    applicationProtocol: protocol,
    rds: { routeConfigName: `${host}_${port}`, configSource: { ads: {}, resourceApiVersion: 'V3' } },
    codec: { name: codec },
    metaProtocolFilters: [
      ...(rateLimit ? [{ name: AERAKI_LOCAL_RATE_LIMIT, config: localRateLimit(host, rateLimit) }] : []),
      { name: AERAKI_ROUTER },
    ],
  };
}

function localRateLimit(host: string, l: LocalRateLimit): { [key: string]: Json } {
  return {
    '@type': TYPE_LOCAL_RATE_LIMIT,
    statPrefix: host,
    ...(l.tokenBucket ? { tokenBucket: tokenBucket(l.tokenBucket) } : {}),
    ...(l.conditions.length ? {
      conditions: l.conditions.map((c) => ({ match: { metadata: c.match.map(([name, m]) => headerMatcher(name, m)) }, tokenBucket: tokenBucket(c.tokenBucket) })),
    } : {}),
  };
}

function tokenBucket(b: TokenBucket): { [key: string]: Json } {
  // Whole milliseconds: protobuf JSON durations carry at most 9 decimals.
  return { maxTokens: b.maxTokens, tokensPerFill: b.tokensPerFill, fillInterval: `${Math.round(b.fillIntervalMs) / 1000}s` };
}

function headerMatcher(name: string, m: StringMatch): { [key: string]: Json } {
  if (m.kind === 'present') return { name, presentMatch: true };
  if (m.kind === 'exact') return { name, stringMatch: { exact: m.value } };
  if (m.kind === 'prefix') return { name, stringMatch: { prefix: m.value } };
  return { name, stringMatch: { safeRegex: { regex: m.value } } }; // the reader refuses regex here; this is its Envoy form
}

function listener(name: string, address: string, port: number, mpp: { [key: string]: Json }): Plain {
  const typedStruct = envoyType('TypedStruct');
  const value = typedStruct.encode(typedStruct.fromObject({ type_url: TYPE_META_PROTOCOL_PROXY, value: jsonToStruct(mpp) })).finish();
  return {
    name,
    address: { socket_address: { address, port_value: port } },
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.meta_protocol_proxy', typed_config: { type_url: TYPED_STRUCT_URLS[0], value } }] }],
  };
}
