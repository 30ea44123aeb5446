// The Aeraki and Istio resources the control plane reads, validated field by field. A resource
// that fails validation is reported (file, document, field); the control plane keeps serving its
// last good version (control-plane.ts).

import { regexProblem } from '../core/safe-regex';
import { readAuthorizationPolicy } from '../security/authorization-policy';
import { suggest } from '../core/suggest';
import { Field } from '../config/field';
import { GROUPS, OBJECT_FIELDS, READ_KINDS, ReadKind, SPEC_FIELDS, type FieldSet } from './resource-kinds';
import type { LbPolicy } from '../upstream/load-balancer';

export interface StringMatch { kind: 'exact' | 'prefix' | 'regex' | 'present'; value: string }

export interface TokenBucket { maxTokens: number; tokensPerFill: number; fillIntervalMs: number }

/** Aeraki's MetaRouter localRateLimit: the first matching condition's bucket, else the default one. */
export interface LocalRateLimit {
  tokenBucket: TokenBucket | undefined;
  conditions: Array<{ match: Array<[string, StringMatch]>; tokenBucket: TokenBucket }>;
}

export interface MetaRouter {
  kind: 'MetaRouter';
  name: string;
  namespace: string;
  host: string;
  localRateLimit: LocalRateLimit | undefined;
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
  namespace: string;
  host: string;
  /** Virtual IPs of the service (Istio: where its clients connect). */
  addresses: string[];
  ports: Array<{ number: number; name: string; targetPort: number | undefined }>;
  endpoints: Array<{ address: string; ports: Record<string, number>; labels: Record<string, string> }>;
}

export interface DestinationRule {
  kind: 'DestinationRule';
  name: string;
  namespace: string;
  host: string;
  hashKey: string | undefined;
  /** trafficPolicy.loadBalancer: `simple`, or ring_hash for consistentHash (as istiod derives lb_policy). */
  lbPolicy: LbPolicy | undefined;
  /** trafficPolicy.connectionPool, as istiod maps it onto Envoy's circuit breakers and connect timeout. */
  connectionPool: ConnectionPool | undefined;
  outlierDetection: OutlierDetection | undefined;
  subsets: Array<{ name: string; labels: Record<string, string>; hashKey: string | undefined; lbPolicy: LbPolicy | undefined; connectionPool: ConnectionPool | undefined; outlierDetection: OutlierDetection | undefined }>;
}

export interface OutlierDetection {
  consecutiveErrors: number;
  consecutiveGatewayFailures: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
  intervalMs: number;
  /** Istio's minHealthPercent: Envoy's healthy_panic_threshold. */
  minHealthPercent: number | undefined;
}

export interface ConnectionPool {
  maxConnections?: number;
  connectTimeoutMs?: number;
  maxPendingRequests?: number;
  maxRequests?: number;
  maxRetries?: number;
}

export interface ApplicationProtocol {
  kind: 'ApplicationProtocol';
  name: string;
  namespace: string;
  protocol: string;
  codec: string;
}

/** An Istio AuthorizationPolicy, validated; served as written to the proxies its selector picks. */
export interface AuthorizationPolicyResource {
  kind: 'AuthorizationPolicy';
  name: string;
  namespace: string;
  selector: Readonly<Record<string, string>> | undefined;
  spec: Record<string, unknown>;
}

export type Resource = MetaRouter | ServiceEntry | DestinationRule | ApplicationProtocol | AuthorizationPolicyResource;

/** Where notes about valid fields without effect are collected (`document 0.spec.exportTo: …`). */
export type Notes = string[];

/** `f`, after its keys were checked against `set`. */
function checked(f: Field, set: FieldSet, notes: Notes): Field {
  const known = [...set.read, ...set.ignored];
  for (const key of Object.keys(f.object())) {
    if (set.ignored.includes(key)) notes.push(`${f.path}.${key}: not acted on by meltemi; ignored`);
    else if (!set.read.includes(key)) {
      const guess = suggest(key, known);
      f.child(key).fail(`unknown field${guess ? ` (did you mean ${guess}?)` : ''} (expected one of: ${known.join(', ')})`);
    }
  }
  return f;
}

function stringMap(f: Field): Record<string, string> {
  if (!f.present) return {};
  const o = f.object();
  for (const k of Object.keys(o)) f.child(k).string();
  return o as Record<string, string>;
}

/** Istio's loadBalancer.simple values and the policy each becomes (LEAST_CONN is LEAST_REQUEST's old name). */
const SIMPLE: Record<string, LbPolicy> = { ROUND_ROBIN: 'round_robin', LEAST_REQUEST: 'least_request', LEAST_CONN: 'least_request', RANDOM: 'random' };

function lbPolicyOf(policy: Field): LbPolicy | undefined {
  if (!policy.present) return undefined;
  const lb = policy.child('loadBalancer');
  if (!lb.present) return undefined;
  if (lb.child('consistentHash').present) return 'ring_hash';
  const simple = lb.child('simple');
  if (!simple.present) return undefined;
  return SIMPLE[simple.oneOf([...Object.keys(SIMPLE), 'UNSPECIFIED', 'PASSTHROUGH'] as const)] ?? undefined;
}

function connectionPoolOf(policy: Field, notes: Notes): ConnectionPool | undefined {
  if (!policy.present) return undefined;
  const pool = policy.child('connectionPool');
  if (!pool.present) return undefined;
  checked(pool, SPEC_FIELDS['DestinationRule.connectionPool'], notes);
  const out: ConnectionPool = {};
  const tcp = pool.child('tcp');
  if (tcp.present) {
    checked(tcp, SPEC_FIELDS['DestinationRule.connectionPool.tcp'], notes);
    if (tcp.child('maxConnections').present) out.maxConnections = tcp.child('maxConnections').integer(1, 2 ** 31 - 1);
    if (tcp.child('connectTimeout').present) out.connectTimeoutMs = tcp.child('connectTimeout').durationMs();
  }
  const http = pool.child('http');
  if (http.present) {
    checked(http, SPEC_FIELDS['DestinationRule.connectionPool.http'], notes);
    if (http.child('http1MaxPendingRequests').present) out.maxPendingRequests = http.child('http1MaxPendingRequests').integer(1, 2 ** 31 - 1);
    if (http.child('http2MaxRequests').present) out.maxRequests = http.child('http2MaxRequests').integer(1, 2 ** 31 - 1);
    if (http.child('maxRetries').present) out.maxRetries = http.child('maxRetries').integer(0, 2 ** 31 - 1);
  }
  return out;
}

function outlierDetectionOf(policy: Field, notes: Notes): OutlierDetection | undefined {
  if (!policy.present) return undefined;
  const od = policy.child('outlierDetection');
  if (!od.present) return undefined;
  checked(od, SPEC_FIELDS['DestinationRule.outlierDetection'], notes);
  const percent = (p: Field) => {
    if (typeof p.value !== 'number' || p.value < 0 || p.value > 100) p.fail('must be a percentage from 0 to 100');
    return p.value as number;
  };
  // Istio's defaults, and its rule that an unset consecutiveGatewayErrors does not eject.
  return {
    consecutiveErrors: od.child('consecutive5xxErrors').or((n) => n.integer(0, 1_000_000), 5),
    consecutiveGatewayFailures: od.child('consecutiveGatewayErrors').or((n) => n.integer(0, 1_000_000), 0),
    baseEjectionMs: od.child('baseEjectionTime').or((d) => d.durationMs(), 30_000),
    maxEjectionPercent: od.child('maxEjectionPercent').or(percent, 10),
    intervalMs: od.child('interval').or((d) => Math.max(1, d.durationMs()), 10_000),
    minHealthPercent: od.child('minHealthPercent').or(percent, undefined),
  };
}

function hashKeyOf(policy: Field, notes: Notes): string | undefined {
  if (!policy.present) return undefined;
  checked(policy, SPEC_FIELDS['DestinationRule.trafficPolicy'], notes);
  const lb = policy.child('loadBalancer');
  if (!lb.present) return undefined;
  checked(lb, SPEC_FIELDS['DestinationRule.loadBalancer'], notes);
  const hash = lb.child('consistentHash');
  if (!hash.present) return undefined;
  checked(hash, SPEC_FIELDS['DestinationRule.consistentHash'], notes);
  return hash.child('httpHeaderName').or((h) => h.string({ nonEmpty: true }), undefined);
}

/**
 * What names a resource across edits (`MetaRouter/ns/name`), read without validating. `key` only
 * when the kind is spelled right; `kind` is the read kind a misspelled one resembles.
 */
export interface ResourceIdentity { key: string | undefined; host: string | undefined; kind: string | undefined }

export function resourceIdentity(doc: unknown): ResourceIdentity {
  const o = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  const meta = (typeof o.metadata === 'object' && o.metadata !== null ? o.metadata : {}) as Record<string, unknown>;
  const spec = (typeof o.spec === 'object' && o.spec !== null ? o.spec : {}) as Record<string, unknown>;
  // A misspelled kind (`MetaRoutr`) is taken for the kind it resembles: an invalid MetaRouter.
  const written = typeof o.kind === 'string' ? o.kind : undefined;
  const kind = written === undefined || (READ_KINDS as readonly string[]).includes(written) ? written : suggest(written, READ_KINDS) ?? written;
  const name = typeof meta.name === 'string' ? meta.name : undefined;
  const host = Array.isArray(spec.hosts) && typeof spec.hosts[0] === 'string' ? spec.hosts[0] : typeof spec.host === 'string' ? spec.host : undefined;
  const known = kind !== undefined && kind === written && (READ_KINDS as readonly string[]).includes(kind);
  return { key: known && name ? keyOf(kind, typeof meta.namespace === 'string' ? meta.namespace : '', name) : undefined, host, kind };
}

export const keyOf = (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`;

/**
 * Validates one YAML document. Returns undefined for a kind the control plane recognises and
 * does not use (a VirtualService, a Deployment); throws a ConfigError for a misspelled kind or
 * field. Valid fields that have no effect in meltemi are added to `notes`.
 */
export function readResource(doc: unknown, where: string, notes: Notes = []): Resource | undefined {
  const root = new Field(where, doc);
  root.object();
  const kind = root.child('kind').string({ nonEmpty: true });
  const apiVersion = root.child('apiVersion').string({ nonEmpty: true });
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/', 2) : ['', apiVersion];
  const known = GROUPS[group];
  const own = Object.entries(GROUPS).find(([, g]) => g.kinds.includes(kind));
  if (!known) {
    const guess = suggest(group, Object.keys(GROUPS));
    if (guess) root.child('apiVersion').fail(`unknown API group "${group}" (did you mean ${guess}?)`);
    if (own) root.child('apiVersion').fail(`must be ${own[0]}/${own[1].versions.at(-1)} for ${kind}`);
    return undefined; // a kind of another API (a Deployment, a Service): not the control plane's
  }
  if (own && own[1] !== known) root.child('apiVersion').fail(`must be ${own[0]}/${own[1].versions.at(-1)} for ${kind}`);
  if (!known.kinds.includes(kind)) {
    const guess = suggest(kind, known.kinds);
    root.child('kind').fail(`unknown kind "${kind}" in ${group}${guess ? ` (did you mean ${guess}?)` : ''} (expected one of: ${known.kinds.join(', ')})`);
  }
  if (!known.versions.includes(version)) root.child('apiVersion').fail(`unknown version "${version}" of ${group} (expected one of: ${known.versions.join(', ')})`);
  if (!(READ_KINDS as readonly string[]).includes(kind)) return undefined;
  checked(root, OBJECT_FIELDS, notes);
  const metadata = root.child('metadata');
  const name = metadata.child('name').string({ nonEmpty: true });
  const namespace = metadata.child('namespace').or((n) => n.string(), '');
  const spec = root.child('spec');
  spec.object();
  checked(spec, SPEC_FIELDS[kind], notes);
  const id = { name, namespace };
  switch (kind as ReadKind) {
    case 'MetaRouter': return readMetaRouter(spec, id, notes);
    case 'ServiceEntry': return readServiceEntry(spec, id, notes);
    case 'DestinationRule':
      return {
        kind: 'DestinationRule', ...id,
        host: spec.child('host').string({ nonEmpty: true }),
        hashKey: hashKeyOf(spec.child('trafficPolicy'), notes),
        lbPolicy: lbPolicyOf(spec.child('trafficPolicy')),
        connectionPool: connectionPoolOf(spec.child('trafficPolicy'), notes),
        outlierDetection: outlierDetectionOf(spec.child('trafficPolicy'), notes),
        subsets: spec.child('subsets').or((s) => s.items().map((sub) => {
          checked(sub, SPEC_FIELDS['DestinationRule.subset'], notes);
          return {
            name: sub.child('name').string({ nonEmpty: true, pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/ }),
            labels: stringMap(sub.child('labels')),
            hashKey: hashKeyOf(sub.child('trafficPolicy'), notes),
            lbPolicy: lbPolicyOf(sub.child('trafficPolicy')),
            connectionPool: connectionPoolOf(sub.child('trafficPolicy'), notes),
            outlierDetection: outlierDetectionOf(sub.child('trafficPolicy'), notes),
          };
        }), []),
      };
    case 'ApplicationProtocol':
      return { kind: 'ApplicationProtocol', ...id, protocol: spec.child('protocol').string({ nonEmpty: true }), codec: spec.child('codec').string({ nonEmpty: true }) };
    case 'AuthorizationPolicy': {
      const policy = readAuthorizationPolicy(spec, `${namespace}/${name}`);
      return { kind: 'AuthorizationPolicy', ...id, selector: policy.selector, spec: spec.object() };
    }
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

/** Aeraki's webhook: a bucket must not refill faster than this. */
const MIN_FILL_INTERVAL_MS = 50;

function readTokenBucket(f: Field, notes: Notes): TokenBucket {
  checked(f, SPEC_FIELDS['MetaRouter.tokenBucket'], notes);
  const maxTokens = f.child('maxTokens').integer(1, 2 ** 32 - 1);
  const fillIntervalMs = f.child('fillInterval').durationMs();
  if (fillIntervalMs < MIN_FILL_INTERVAL_MS) f.child('fillInterval').fail(`must be at least ${MIN_FILL_INTERVAL_MS}ms`);
  if (fillIntervalMs > 86_400_000) f.child('fillInterval').fail('must be at most a day');
  // Aeraki's webhook requires tokensPerFill; meltemi defaults it to maxTokens like its filter does.
  return { maxTokens, tokensPerFill: f.child('tokensPerFill').or((t) => t.integer(1, 2 ** 32 - 1), maxTokens), fillIntervalMs };
}

function readAttributes(attributes: Field): Array<[string, StringMatch]> {
  if (!attributes.present) return [];
  return Object.keys(attributes.object()).sort().flatMap((k) => {
    if (!k) attributes.fail('attribute names must not be empty');
    const m = readMatch(attributes.child(k));
    return m ? [[k, m] as [string, StringMatch]] : [];
  });
}

function readLocalRateLimit(f: Field, notes: Notes): LocalRateLimit {
  checked(f, SPEC_FIELDS['MetaRouter.localRateLimit'], notes);
  const tokenBucket = f.child('tokenBucket').or((b) => readTokenBucket(b, notes), undefined);
  const conditions = f.child('conditions').or((c) => c.items().map((cond) => {
    checked(cond, SPEC_FIELDS['MetaRouter.rateLimitCondition'], notes);
    const match = cond.child('match');
    checked(match, SPEC_FIELDS['MetaRouter.match'], notes);
    const attributes = readAttributes(match.child('attributes'));
    attributes.forEach(([k, m]) => {
      if (m.kind === 'regex') match.child('attributes').child(k).child('regex').fail('the local rate limit matches exact, prefix or presence only');
    });
    return { match: attributes, tokenBucket: readTokenBucket(cond.child('tokenBucket'), notes) };
  }), []);
  if (!tokenBucket && conditions.length === 0) f.fail('needs tokenBucket or conditions');
  return { tokenBucket, conditions };
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

function readMetaRouter(spec: Field, id: { name: string; namespace: string }, notes: Notes): MetaRouter {
  const hosts = spec.child('hosts').items();
  if (hosts.length !== 1) spec.child('hosts').fail('must name exactly one host');
  const o = spec.object();
  if (o.routes === undefined && o.localRateLimit === undefined && o.globalRateLimit === undefined) spec.fail('needs routes (or a rate limit)');
  const routes = spec.child('routes').or((r) => r.items().map((route) => {
    checked(route, SPEC_FIELDS['MetaRouter.route'], notes);
    const destinations = route.child('route').items();
    if (destinations.length === 0) route.child('route').fail('needs at least one destination');
    const dests = destinations.map((d) => ({
      ...readDestination(checked(d, SPEC_FIELDS['MetaRouter.destination'], notes).child('destination')),
      weight: destinations.length > 1 ? d.child('weight').integer(0, 100) : 100,
    }));
    if (dests.length > 1 && dests.reduce((t, d) => t + d.weight, 0) !== 100) route.child('route').fail('weights must add up to 100');
    if (route.child('match').present) checked(route.child('match'), SPEC_FIELDS['MetaRouter.match'], notes);
    const match = route.child('match').present ? readAttributes(route.child('match').child('attributes')) : [];
    const mirror = route.child('mirror').or((m) => readDestination(m), undefined);
    const pct = route.child('mirrorPercentage');
    let mirrorPercentage: number | undefined;
    if (pct.present) {
      if (!mirror) pct.fail('needs mirror');
      const v = pct.only(['value']).child('value').value;
      if (typeof v !== 'number' || v <= 0 || v > 100) pct.child('value').fail('must be a number in (0, 100]');
      mirrorPercentage = v as number;
    }
    return {
      name: route.child('name').or((n) => n.string(), ''),
      match,
      route: dests,
      mirror,
      mirrorPercentage,
      requestMutation: route.child('requestMutation').or((m) => m.items().map((kv) => kv.only(['key', 'value'])).map((kv) => ({
        key: kv.child('key').string({ nonEmpty: true }), value: kv.child('value').string({ nonEmpty: true }),
      })), []),
    };
  }), []);
  const localRateLimit = spec.child('localRateLimit').or((l) => readLocalRateLimit(l, notes), undefined);
  return { kind: 'MetaRouter', ...id, host: hosts[0].string({ nonEmpty: true }), routes, localRateLimit };
}

function readServiceEntry(spec: Field, id: { name: string; namespace: string }, notes: Notes): ServiceEntry {
  const hosts = spec.child('hosts').items();
  if (hosts.length === 0) spec.child('hosts').fail('must name a host');
  if (hosts.length > 1) notes.push(`${spec.path}.hosts: only the first host (${String(hosts[0].value)}) is served, as Aeraki does`);
  const resolution = spec.child('resolution').or((r) => r.oneOf(['STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'NONE'] as const), 'STATIC');
  if (resolution !== 'STATIC') notes.push(`${spec.path}.resolution: ${resolution}: meltemi does not resolve names; endpoint addresses are used as given (STATIC)`);
  spec.child('location').or((l) => l.oneOf(['MESH_EXTERNAL', 'MESH_INTERNAL'] as const), undefined);
  return {
    kind: 'ServiceEntry', ...id,
    host: hosts[0].string({ nonEmpty: true }),
    addresses: spec.child('addresses').or((a) => a.items().map((i) => i.string({ nonEmpty: true })), []),
    ports: spec.child('ports').items().map((p) => checked(p, SPEC_FIELDS['ServiceEntry.port'], notes)).map((p) => ({
      number: p.child('number').integer(1, 65535),
      name: p.child('name').string({ nonEmpty: true }),
      targetPort: p.child('targetPort').or((t) => t.integer(1, 65535), undefined),
    })),
    endpoints: spec.child('endpoints').or((e) => e.items().map((ep) => checked(ep, SPEC_FIELDS['ServiceEntry.endpoint'], notes)).map((ep) => ({
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

