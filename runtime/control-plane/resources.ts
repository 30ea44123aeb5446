// The Aeraki and Istio resources the control plane reads, validated field by field. A resource
// that fails validation is reported (file, document, field) and skipped; the others are served.

import { regexProblem } from '../core/safe-regex';
import { Field } from '../config/field';

export interface StringMatch { kind: 'exact' | 'prefix' | 'regex' | 'present'; value: string }

export interface MetaRouter {
  kind: 'MetaRouter';
  name: string;
  host: string;
  routes: Array<{
    name: string;
    /** Sorted by key: Aeraki's map iteration made route content non-deterministic. */
    match: Array<[string, StringMatch]>;
    route: Array<{ host: string; subset: string; port: number | undefined; weight: number }>;
    mirror: { host: string; subset: string; port: number | undefined } | undefined;
    mirrorPercentage: number | undefined;
    requestMutation: Array<{ key: string; value: string }>;
  }>;
}

export interface ServiceEntry {
  kind: 'ServiceEntry';
  name: string;
  host: string;
  ports: Array<{ number: number; name: string; targetPort: number | undefined }>;
  endpoints: Array<{ address: string; ports: Record<string, number>; labels: Record<string, string> }>;
}

export interface DestinationRule {
  kind: 'DestinationRule';
  name: string;
  host: string;
  hashKey: string | undefined;
  subsets: Array<{ name: string; labels: Record<string, string>; hashKey: string | undefined }>;
}

export interface ApplicationProtocol {
  kind: 'ApplicationProtocol';
  name: string;
  protocol: string;
  codec: string;
}

export type Resource = MetaRouter | ServiceEntry | DestinationRule | ApplicationProtocol;

const KINDS: Record<string, string> = {
  MetaRouter: 'metaprotocol.aeraki.io/',
  ApplicationProtocol: 'metaprotocol.aeraki.io/',
  ServiceEntry: 'networking.istio.io/',
  DestinationRule: 'networking.istio.io/',
};

function stringMap(f: Field): Record<string, string> {
  if (!f.present) return {};
  const o = f.object();
  for (const k of Object.keys(o)) f.child(k).string();
  return o as Record<string, string>;
}

function hashKeyOf(policy: Field): string | undefined {
  if (!policy.present) return undefined;
  const ch = policy.object().loadBalancer as Record<string, unknown> | undefined;
  const hash = ch?.consistentHash as Record<string, unknown> | undefined;
  return typeof hash?.httpHeaderName === 'string' ? hash.httpHeaderName : undefined;
}

/** Validates one YAML document; returns undefined for kinds the control plane does not use. */
export function readResource(doc: unknown, where: string): Resource | undefined {
  const root = new Field(where, doc);
  const o = root.object();
  const kind = root.child('kind').string({ nonEmpty: true });
  const group = KINDS[kind];
  if (!group) return undefined;
  const apiVersion = root.child('apiVersion').string({ nonEmpty: true });
  if (!apiVersion.startsWith(group)) root.child('apiVersion').fail(`must be ${group}… for ${kind}`);
  const name = root.child('metadata').child('name').string({ nonEmpty: true });
  const spec = root.child('spec');
  spec.object();
  void o;
  switch (kind) {
    case 'MetaRouter': return readMetaRouter(spec, name);
    case 'ServiceEntry': return readServiceEntry(spec, name);
    case 'DestinationRule': {
      const trafficPolicy = spec.child('trafficPolicy');
      return {
        kind, name,
        host: spec.child('host').string({ nonEmpty: true }),
        hashKey: hashKeyOf(trafficPolicy),
        subsets: spec.child('subsets').or((s) => s.items().map((sub) => ({
          name: sub.child('name').string({ nonEmpty: true, pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/ }),
          labels: stringMap(sub.child('labels')),
          hashKey: hashKeyOf(sub.child('trafficPolicy')),
        })), []),
      };
    }
    default:
      return { kind: 'ApplicationProtocol', name, protocol: spec.child('protocol').string({ nonEmpty: true }), codec: spec.child('codec').string({ nonEmpty: true }) };
  }
}

function readDestination(f: Field) {
  f.only(['host', 'subset', 'port']);
  return {
    host: f.child('host').string({ nonEmpty: true }),
    subset: f.child('subset').or((s) => s.string(), ''),
    port: f.child('port').or((p) => p.only(['number']).child('number').integer(1, 65535), undefined),
  };
}

function readMatch(f: Field): StringMatch | undefined {
  if (!f.present) return { kind: 'present', value: '' }; // null: presence (Aeraki)
  const o = f.object();
  const keys = Object.keys(o);
  if (keys.length === 0) return undefined; // {}: Aeraki skips it
  if (keys.length > 1) f.fail('needs one of exact, prefix, regex');
  const key = keys[0];
  if (key !== 'exact' && key !== 'prefix' && key !== 'regex') f.child(key).fail('unknown match (exact, prefix or regex)');
  const value = f.child(key).string(key === 'regex' ? { nonEmpty: true } : {});
  if (key === 'regex' && value === '*') return { kind: 'present', value: '' };
  const problem = key === 'regex' ? regexProblem(value) : undefined;
  if (problem) f.child(key).fail(problem);
  return { kind: key as 'exact' | 'prefix' | 'regex', value };
}

function readMetaRouter(spec: Field, name: string): MetaRouter {
  const hosts = spec.child('hosts').items();
  if (hosts.length !== 1) spec.child('hosts').fail('must name exactly one host');
  const routes = spec.child('routes').or((r) => r.items().map((route) => {
    const destinations = route.child('route').items();
    if (destinations.length === 0) route.child('route').fail('needs at least one destination');
    const dests = destinations.map((d) => ({
      ...readDestination(d.child('destination')),
      weight: destinations.length > 1 ? d.child('weight').integer(0, 100) : 100,
    }));
    if (dests.length > 1 && dests.reduce((t, d) => t + d.weight, 0) !== 100) route.child('route').fail('weights must add up to 100');
    const attributes = route.child('match').present ? route.child('match').child('attributes') : undefined;
    const match = attributes?.present
      ? Object.keys(attributes.object()).sort().flatMap((k) => {
        if (!k) attributes.fail('attribute names must not be empty');
        const m = readMatch(attributes.child(k));
        return m ? [[k, m] as [string, StringMatch]] : [];
      })
      : [];
    const mirror = route.child('mirror').or((m) => readDestination(m), undefined);
    const pct = route.child('mirrorPercentage');
    let mirrorPercentage: number | undefined;
    if (pct.present) {
      if (!mirror) pct.fail('needs mirror');
      const v = pct.child('value').value;
      if (typeof v !== 'number' || v <= 0 || v > 100) pct.child('value').fail('must be a number in (0, 100]');
      mirrorPercentage = v as number;
    }
    return {
      name: route.child('name').or((n) => n.string(), ''),
      match,
      route: dests,
      mirror,
      mirrorPercentage,
      requestMutation: route.child('requestMutation').or((m) => m.items().map((kv) => ({
        key: kv.child('key').string({ nonEmpty: true }), value: kv.child('value').string({ nonEmpty: true }),
      })), []),
    };
  }), []);
  return { kind: 'MetaRouter', name, host: hosts[0].string({ nonEmpty: true }), routes };
}

function readServiceEntry(spec: Field, name: string): ServiceEntry {
  const hosts = spec.child('hosts').items();
  if (hosts.length === 0) spec.child('hosts').fail('must name a host');
  return {
    kind: 'ServiceEntry', name,
    host: hosts[0].string({ nonEmpty: true }),
    ports: spec.child('ports').items().map((p) => ({
      number: p.child('number').integer(1, 65535),
      name: p.child('name').string({ nonEmpty: true }),
      targetPort: p.child('targetPort').or((t) => t.integer(1, 65535), undefined),
    })),
    endpoints: spec.child('endpoints').or((e) => e.items().map((ep) => ({
      address: ep.child('address').string({ nonEmpty: true }),
      ports: (() => {
        const ports = ep.child('ports');
        if (!ports.present) return {};
        return Object.fromEntries(Object.keys(ports.object()).map((k) => [k, ports.child(k).integer(1, 65535)]));
      })(),
      labels: stringMap(ep.child('labels')),
    })), []),
  };
}

