// MetaProtocol routes tunnelled in Envoy HTTP RouteConfigurations, exactly as Aeraki encodes
// them (see ../shared reference, aeraki-control-plane §3.2): one virtual host; route.match.headers
// are the metadata matchers; request_headers_to_add is the request mutation. decode() turns a
// received RouteConfiguration into meltemi's route model, validated like static config, so a bad
// update is rejected with the field that is wrong; encode() is the inverse (control plane, tests).

import type { KeyValue, MetadataMatcherConfig, RouteConfig, RouteConfiguration } from '../config/types';
import { Field } from '../config/field';
import { readRouteConfiguration } from '../config/validate';
import { ConfigError } from '../core/errors';
import { durationToMs, msToDuration } from './envoy-protos';

type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A RouteConfiguration received over RDS, as meltemi routes. */
export interface DecodedRoutes {
  readonly routes: RouteConfiguration;
  /** Envoy's RouteConfiguration.validate_clusters: reject routes that name an unknown cluster. */
  readonly validateClusters: boolean;
}

/**
 * A decoded Envoy RouteConfiguration (protobufjs plain object) to meltemi routes. Errors name the
 * field in the message the control plane sent (`virtual_hosts[0].routes[2].match.headers[0]
 * .string_match.safe_regex.regex`), so its operator can find it.
 */
export function decodeTunnel(message: Record<string, unknown>): DecodedRoutes {
  const rc = message as Plain;
  const hosts: Plain[] = rc.virtual_hosts ?? [];
  if (hosts.length !== 1) throw new ConfigError('virtual_hosts', `expected exactly one virtual host, got ${hosts.length}`);
  const stringMatchers = new Set<string>();
  const routes = (hosts[0].routes ?? []).map((r: Plain, i: number) => {
    const path = `virtual_hosts[0].routes[${i}]`;
    if (r.action !== undefined && r.action !== 'route') throw new ConfigError(`${path}.${r.action}`, 'only route actions are supported');
    if (!r.route) throw new ConfigError(`${path}.route`, 'a route action is required');
    const route: Plain = {};
    if (r.route.cluster !== undefined) route.cluster = r.route.cluster;
    if (r.route.weighted_clusters) {
      route.weighted_clusters = {
        clusters: (r.route.weighted_clusters.clusters ?? []).map((c: Plain) => ({ name: c.name, weight: c.weight?.value ?? 0 })),
      };
    }
    if (r.route.hash_policy?.length) route.hash_policy = r.route.hash_policy.map((h: Plain) => h.header?.header_name);
    if (r.route.request_mirror_policies?.length) {
      route.request_mirror_policies = r.route.request_mirror_policies.map((m: Plain) => ({ cluster: m.cluster, percentage: mirrorPercent(m.runtime_fraction?.default_value) }));
    }
    if (r.route.timeout) route.timeout = durationMs(r.route.timeout);
    if (r.route.retry_policy) route.retry_policy = retryPolicyFromEnvoy(r.route.retry_policy, idempotentIn(r.metadata));
    const headers: Plain[] = r.match?.headers ?? [];
    headers.forEach((h, j) => { if (h.header_match_specifier === 'string_match') stringMatchers.add(`${i}/${j}`); });
    return {
      name: r.name ?? '',
      match: { metadata: headers.map((h: Plain, j: number) => matcherFromHeader(h, `${path}.match.headers[${j}]`)) },
      route,
      request_mutation: (r.request_headers_to_add ?? []).map((o: Plain) => ({ key: o.header?.key, value: o.header?.value ?? '' })),
    };
  });
  try {
    return {
      routes: readRouteConfiguration(new Field('route_config', { name: rc.name ?? '', routes }), undefined),
      validateClusters: rc.validate_clusters?.value === true,
    };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(envoyPath(err.field, stringMatchers), err.line.slice(err.field.length + 2));
  }
}

/** Field renames from meltemi's route model back to the Envoy message it was decoded from. */
const ENVOY_PATHS: Array<[RegExp, string]> = [
  [/\.request_mutation\[(\d+)\]\.(key|value)/, '.request_headers_to_add[$1].header.$2'],
  [/\.request_mutation\[/, '.request_headers_to_add['],
  [/\.route\.hash_policy\[(\d+)\]/, '.route.hash_policy[$1].header.header_name'],
  [/\.route\.request_mirror_policies\[(\d+)\]\.percentage/, '.route.request_mirror_policies[$1].runtime_fraction.default_value'],
  [/\.match\.metadata/, '.match.headers'],
  [/\.route\.retry_policy\.idempotent/, '.metadata.filter_metadata.meltemi.idempotent'],
  [/\.route\.retry_policy\.num_retries/, '.route.retry_policy.num_retries.value'],
  [/^route_config\.routes/, 'virtual_hosts[0].routes'],
  [/^route_config\./, ''],
];

/** A legacy HeaderMatcher field and its StringMatcher equivalent under string_match. */
const STRING_MATCH_FIELDS: Record<string, string> = {
  exact_match: 'exact', prefix_match: 'prefix', suffix_match: 'suffix', contains_match: 'contains', safe_regex_match: 'safe_regex',
};

function envoyPath(field: string, stringMatchers: ReadonlySet<string>): string {
  let path = field;
  const m = /^route_config\.routes\[(\d+)\]\.match\.metadata\[(\d+)\]\.([a-z_]+)/.exec(path);
  if (m && stringMatchers.has(`${m[1]}/${m[2]}`) && STRING_MATCH_FIELDS[m[3]]) {
    path = path.replace(`.${m[3]}`, `.string_match.${STRING_MATCH_FIELDS[m[3]]}`);
  }
  for (const [from, to] of ENVOY_PATHS) path = path.replace(from, to);
  return path || '(root)';
}

/** Every cluster the routes name, with the field of the Envoy RouteConfiguration that names it. */
export function clusterReferences(rc: RouteConfiguration): Array<{ path: string; cluster: string }> {
  return rc.routes.flatMap((r, i) => {
    const path = `virtual_hosts[0].routes[${i}].route`;
    const targets = r.route.kind === 'cluster'
      ? [{ path: `${path}.cluster`, cluster: r.route.cluster }]
      : r.route.clusters.map((c, k) => ({ path: `${path}.weighted_clusters.clusters[${k}].name`, cluster: c.name }));
    const mirrors = (r.route.mirrors ?? []).map((m, k) => ({ path: `${path}.request_mirror_policies[${k}].cluster`, cluster: m.cluster }));
    return [...targets, ...mirrors];
  });
}

const durationMs = (d: Plain) => Math.round(durationToMs(d));

/** Route metadata under this key carries what Envoy's RetryPolicy has no field for. */
const META_KEY = 'meltemi';

/** `metadata.filter_metadata.meltemi.idempotent` of an Envoy route (a Struct, plain). */
function idempotentIn(metadata: Plain | undefined): boolean {
  return metadata?.filter_metadata?.[META_KEY]?.fields?.idempotent?.boolValue === true;
}

function retryPolicyFromEnvoy(p: Plain, idempotent: boolean): Plain {
  return {
    ...(p.retry_on !== undefined ? { retry_on: p.retry_on } : {}),
    ...(p.num_retries !== undefined ? { num_retries: p.num_retries.value ?? 0 } : {}),
    ...(p.per_try_timeout ? { per_try_timeout: durationMs(p.per_try_timeout) } : {}),
    ...(p.retry_back_off ? {
      retry_back_off: {
        ...(p.retry_back_off.base_interval ? { base_interval: durationMs(p.retry_back_off.base_interval) } : {}),
        ...(p.retry_back_off.max_interval ? { max_interval: durationMs(p.retry_back_off.max_interval) } : {}),
      },
    } : {}),
    idempotent,
  };
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** Envoy FractionalPercent to a percentage; absent means 100% (Aeraki's default). */
function mirrorPercent(f: Plain | undefined): number {
  if (!f) return 100;
  return (Number(f.numerator ?? 0) * 100) / (DENOMINATORS[f.denominator ?? 'HUNDRED'] ?? 100);
}

/** Envoy's legacy HeaderMatcher fields that are meltemi matcher fields as they are. */
const SAME_NAME = new Set(['exact_match', 'prefix_match', 'suffix_match', 'contains_match', 'present_match']);
/** StringMatcher patterns and the meltemi field each becomes. */
const STRING_PATTERNS: Record<string, string> = { exact: 'exact_match', prefix: 'prefix_match', suffix: 'suffix_match', contains: 'contains_match' };

function matcherFromHeader(h: Plain, path: string): Plain {
  const m: Plain = { name: h.name };
  if (h.invert_match) m.invert_match = true;
  const spec: string | undefined = h.header_match_specifier;
  if (spec === undefined) return m; // name only: presence
  if (SAME_NAME.has(spec)) m[spec] = h[spec];
  else if (spec === 'safe_regex_match') m.safe_regex_match = { regex: h.safe_regex_match?.regex };
  else if (spec === 'string_match') {
    const s = h.string_match ?? {};
    if (s.ignore_case) throw new ConfigError(`${path}.string_match.ignore_case`, 'is not supported');
    const pattern: string = s.match_pattern;
    if (STRING_PATTERNS[pattern]) m[STRING_PATTERNS[pattern]] = s[pattern];
    else if (pattern === 'safe_regex') m.safe_regex_match = { regex: s.safe_regex?.regex };
    else throw new ConfigError(`${path}.string_match`, `match pattern ${pattern} is not supported`);
  } else {
    throw new ConfigError(`${path}.${spec}`, 'is not supported');
  }
  return m;
}

/** meltemi routes to an Envoy RouteConfiguration plain object, as Aeraki builds it. */
export function encodeTunnel(rc: RouteConfiguration): Record<string, unknown> {
  return {
    name: rc.name,
    virtual_hosts: [{ name: 'dummy', domains: ['*'], routes: rc.routes.map(routeToEnvoy) }],
  };
}

function routeToEnvoy(r: RouteConfig): Plain {
  const route: Plain = r.route.kind === 'cluster'
    ? { cluster: r.route.cluster }
    : { weighted_clusters: { clusters: r.route.clusters.map((c) => ({ name: c.name, weight: { value: c.weight } })), total_weight: { value: r.route.clusters.reduce((t, c) => t + c.weight, 0) } } };
  if (r.route.hashPolicy?.length) route.hash_policy = r.route.hashPolicy.map((k) => ({ header: { header_name: k } }));
  if (r.route.mirrors?.length) {
    // Aeraki: numerator = percent x 10000 over a MILLION.
    route.request_mirror_policies = r.route.mirrors.map((m) => ({ cluster: m.cluster, runtime_fraction: { default_value: { numerator: Math.round(m.percentage * 10_000), denominator: 'MILLION' } } }));
  }
  if (r.route.timeoutMs !== undefined) route.timeout = msToDuration(r.route.timeoutMs);
  const retry = r.route.retryPolicy;
  if (retry) {
    route.retry_policy = {
      retry_on: retry.retryOn.join(','),
      num_retries: { value: retry.numRetries },
      ...(retry.perTryTimeoutMs ? { per_try_timeout: msToDuration(retry.perTryTimeoutMs) } : {}),
      retry_back_off: { base_interval: msToDuration(retry.backOff.baseMs), max_interval: msToDuration(retry.backOff.maxMs) },
    };
  }
  return {
    name: r.name,
    match: { prefix: '/', headers: r.match.metadata.map(headerFromMatcher) },
    route,
    ...(retry?.idempotent ? { metadata: { filter_metadata: { [META_KEY]: { fields: { idempotent: { boolValue: true } } } } } } : {}),
    request_headers_to_add: r.requestMutation.map((kv: KeyValue) => ({ header: { key: kv.key, value: kv.value } })),
  };
}

function headerFromMatcher(m: MetadataMatcherConfig): Plain {
  const h: Plain = { name: m.name };
  if (m.invert) h.invert_match = true;
  switch (m.match.kind) {
    case 'exact': h.exact_match = m.match.value; break;
    case 'prefix': h.prefix_match = m.match.value; break;
    case 'suffix': h.suffix_match = m.match.value; break;
    case 'contains': h.contains_match = m.match.value; break;
    case 'regex': h.safe_regex_match = { google_re2: {}, regex: m.match.value }; break;
    case 'present': h.present_match = m.match.value; break;
  }
  return h;
}
