// Istio AuthorizationPolicy for any protocol: the spec read field by field (the same reader for
// the static config, the control plane's resource files and what the control plane serves), and
// compiled into a matcher over a request's connection (principal, namespace, addresses) and its
// metadata. Where Istio's fields name HTTP things, MetaProtocol metadata takes their place:
// `methods` match the `method` key (`command` for protocols without one, such as Redis), `paths`
// the `interface` key, and `when` reads any key as `request.metadata[<key>]`.

import net from 'node:net';
import type { Field } from '../config/field';

export type AuthorizationAction = 'ALLOW' | 'DENY';

/** What a policy rule is matched against. */
export interface AuthorizationInput {
  /** Istio principal of the client (`cluster.local/ns/a/sa/b`); '' without mTLS. */
  readonly principal: string;
  /** The client's namespace from its SPIFFE ID; '' without mTLS. */
  readonly namespace: string;
  /** The connection's peer address; `remoteIp`: the client's, where a PROXY header named it. */
  readonly sourceIp: string;
  readonly remoteIp: string;
  readonly destinationIp: string;
  readonly destinationPort: number;
  readonly sni: string;
  /** A request's metadata value by key. */
  metadata(key: string): string | undefined;
}

type Predicate = (input: AuthorizationInput) => boolean;

export interface AuthorizationPolicy {
  /** `<namespace>/<name>`, for logs and the deny message. */
  readonly name: string;
  readonly action: AuthorizationAction;
  /** Istio's workload selector (matchLabels); only the control plane reads it. */
  readonly selector: Readonly<Record<string, string>> | undefined;
  /** A request matches the policy when one rule matches (no rules: never). */
  readonly rules: readonly Predicate[];
}

const SPEC_FIELDS = ['selector', 'action', 'rules', 'provider', 'targetRef', 'targetRefs'];
const RULE_FIELDS = ['from', 'to', 'when'];
const SOURCE_FIELDS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks', 'requestPrincipals', 'notRequestPrincipals'];
const OPERATION_FIELDS = ['methods', 'notMethods', 'paths', 'notPaths', 'ports', 'notPorts', 'hosts', 'notHosts'];
/** Istio fields that only HTTP or JWT can answer: a policy naming them is refused rather than half enforced. */
const NOT_MEANINGFUL: Record<string, string> = {
  requestPrincipals: 'needs a JWT, which MetaProtocol requests do not carry',
  notRequestPrincipals: 'needs a JWT, which MetaProtocol requests do not carry',
  hosts: 'names an HTTP Host; match the `service` key with when: request.metadata[service]',
  notHosts: 'names an HTTP Host; match the `service` key with when: request.metadata[service]',
};

/** Istio's string match: "*" any non-empty value, "abc*" a prefix, "*abc" a suffix, else exact. */
function stringMatcher(pattern: string): (v: string) => boolean {
  if (pattern === '*') return (v) => v !== '';
  if (pattern.endsWith('*')) {
    const p = pattern.slice(0, -1);
    return (v) => v.startsWith(p);
  }
  if (pattern.startsWith('*')) {
    const s = pattern.slice(1);
    return (v) => v.endsWith(s);
  }
  return (v) => v === pattern;
}

function strings(f: Field): string[] {
  const items = f.items();
  if (items.length === 0) f.fail('must not be empty (leave the field out to match anything)');
  return items.map((i) => i.string({ nonEmpty: true, max: 4096 }));
}

/** One of `values` matches the value `get` reads ('' when absent: only a negative match takes it). */
function anyOf(values: string[], get: (i: AuthorizationInput) => string | undefined): Predicate {
  const ms = values.map(stringMatcher);
  return (i) => {
    const v = get(i) ?? '';
    return ms.some((m) => m(v));
  };
}

function ipBlocks(f: Field, get: (i: AuthorizationInput) => string): Predicate {
  const list = new net.BlockList();
  for (const item of f.items()) {
    const s = item.string({ nonEmpty: true });
    const [addr, bits] = s.split('/');
    const family = net.isIP(addr);
    if (family === 0) item.fail('must be an IP address or a CIDR block such as 10.0.0.0/8');
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, type);
    else {
      const n = Number(bits);
      if (!/^\d+$/.test(bits) || n > (family === 6 ? 128 : 32)) item.fail('has an invalid prefix length');
      list.addSubnet(addr, n, type);
    }
  }
  return (i) => {
    const ip = get(i);
    const family = net.isIP(ip);
    if (family === 0) return false;
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
    const v4 = ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : undefined;
    return v4 ? list.check(v4, 'ipv4') : list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/** `field` and `notField` of a source or operation, ANDed into `out`. */
function pair(f: Field, name: string, out: Predicate[], read: (c: Field) => Predicate): void {
  const pos = f.child(name);
  if (pos.present) out.push(read(pos));
  const neg = f.child(`not${name[0].toUpperCase()}${name.slice(1)}`);
  if (neg.present) {
    const p = read(neg);
    out.push((i) => !p(i));
  }
}

const methodOf = (i: AuthorizationInput) => i.metadata('method') ?? i.metadata('command');

/** The `source` of a `from` entry or the `operation` of a `to` entry, its fields checked. */
function entry(f: Field, key: string, fields: readonly string[]): Field {
  f.only([key]);
  const e = f.child(key);
  e.only(fields);
  for (const k of Object.keys(e.object())) if (NOT_MEANINGFUL[k]) e.child(k).fail(NOT_MEANINGFUL[k]);
  return e;
}

function readSource(f: Field): Predicate {
  const s = entry(f, 'source', SOURCE_FIELDS);
  const all: Predicate[] = [];
  pair(s, 'principals', all, (c) => anyOf(strings(c), (i) => i.principal));
  pair(s, 'namespaces', all, (c) => anyOf(strings(c), (i) => i.namespace));
  pair(s, 'ipBlocks', all, (c) => ipBlocks(c, (i) => i.sourceIp));
  pair(s, 'remoteIpBlocks', all, (c) => ipBlocks(c, (i) => i.remoteIp));
  return (i) => all.every((p) => p(i));
}

function ports(f: Field): Predicate {
  const set = new Set(f.items().map((c) => {
    const v = typeof c.value === 'number' ? String(c.value) : c.string();
    if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) c.fail('must be a port number');
    return Number(v);
  }));
  return (i) => set.has(i.destinationPort);
}

function readOperation(f: Field): Predicate {
  const o = entry(f, 'operation', OPERATION_FIELDS);
  const all: Predicate[] = [];
  pair(o, 'methods', all, (c) => anyOf(strings(c), methodOf));
  pair(o, 'paths', all, (c) => anyOf(strings(c), (i) => i.metadata('interface')));
  pair(o, 'ports', all, ports);
  return (i) => all.every((p) => p(i));
}

const METADATA_KEY = /^request\.(?:metadata|headers)\[([^\]]{1,256})\]$/;
const CONDITION_KEYS = ['source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'destination.ip', 'destination.port', 'connection.sni'];

function readCondition(f: Field): Predicate {
  f.only(['key', 'values', 'notValues']);
  const key = f.child('key').string({ nonEmpty: true });
  const meta = METADATA_KEY.exec(key);
  if (!meta && !CONDITION_KEYS.includes(key)) {
    f.child('key').fail(`is not a key meltemi can evaluate (request.metadata[<key>], ${CONDITION_KEYS.join(', ')})`);
  }
  if (!f.child('values').present && !f.child('notValues').present) f.fail('needs values or notValues');
  const all: Predicate[] = [];
  const read = (c: Field): Predicate => {
    if (key === 'source.ip') return ipBlocks(c, (i) => i.sourceIp);
    if (key === 'remote.ip') return ipBlocks(c, (i) => i.remoteIp);
    if (key === 'destination.ip') return ipBlocks(c, (i) => i.destinationIp);
    if (key === 'destination.port') return ports(c);
    const get: (i: AuthorizationInput) => string | undefined = meta ? (i) => i.metadata(meta[1])
      : key === 'source.namespace' ? (i) => i.namespace
        : key === 'source.principal' ? (i) => i.principal
          : (i) => i.sni;
    return anyOf(strings(c), get);
  };
  pair(f, 'values', all, read);
  return (i) => all.every((p) => p(i));
}

function readRule(f: Field): Predicate {
  f.only(RULE_FIELDS);
  // Within from, to and when: any entry; across them: all.
  const groups: Predicate[][] = [];
  for (const [name, read] of [['from', readSource], ['to', readOperation]] as const) {
    const c = f.child(name);
    if (c.present) groups.push(c.items().map(read));
  }
  const when = f.child('when');
  const conditions = when.present ? when.items().map(readCondition) : [];
  return (i) => groups.every((g) => g.some((p) => p(i))) && conditions.every((p) => p(i));
}

/** Reads an AuthorizationPolicy spec; `name` is `<namespace>/<name>`. Errors name the field. */
export function readAuthorizationPolicy(spec: Field, name: string): AuthorizationPolicy {
  spec.only(SPEC_FIELDS);
  for (const k of ['provider', 'targetRef', 'targetRefs']) if (spec.child(k).present) spec.child(k).fail('is not supported by meltemi (CUSTOM actions and gateway targets)');
  const action = spec.child('action').or((c) => {
    const a = c.string();
    if (a === 'CUSTOM' || a === 'AUDIT') c.fail(`${a} is not supported by meltemi (ALLOW or DENY)`);
    return c.oneOf(['ALLOW', 'DENY'] as const);
  }, 'ALLOW');
  let selector: Record<string, string> | undefined;
  const sel = spec.child('selector');
  if (sel.present) {
    sel.only(['matchLabels']);
    const labels = sel.child('matchLabels');
    selector = Object.fromEntries(Object.keys(labels.object()).map((k) => [k, labels.child(k).string()]));
  }
  const rules = spec.child('rules');
  return { name, action, selector, rules: rules.present ? rules.items().map(readRule) : [] };
}

export type AuthorizationDecision = { readonly allowed: true } | { readonly allowed: false; readonly policy: string };

const ALLOWED: AuthorizationDecision = { allowed: true };

/**
 * Istio's order: a request matching any DENY policy is denied; else, with no ALLOW policy it is
 * allowed; else it must match an ALLOW policy. (An ALLOW policy without rules matches nothing,
 * so alone it denies everything, as in Istio.)
 */
export function decide(policies: readonly AuthorizationPolicy[], input: AuthorizationInput): AuthorizationDecision {
  let allows = 0;
  for (const p of policies) {
    if (p.action === 'DENY') {
      if (p.rules.some((r) => r(input))) return { allowed: false, policy: p.name };
    } else allows++;
  }
  if (allows === 0) return ALLOWED;
  for (const p of policies) if (p.action === 'ALLOW' && p.rules.some((r) => r(input))) return ALLOWED;
  return { allowed: false, policy: '' };
}
