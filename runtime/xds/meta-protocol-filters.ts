// A MetaProtocolProxy's meta_protocol_filters (name + Any config) as meltemi filter entries.
// Aeraki's names map onto meltemi's: its router is meltemi's built-in router, its local rate
// limit is the local-ratelimit plugin (config converted); telemetry filters that meltemi does not
// run yet are passed over with a note. Any other name is a filter plugin of that name, configured
// with JSON (google.protobuf.Struct, a TypedStruct, or a StringValue holding JSON). A filter that
// enforces something meltemi cannot enforce (the global rate limit) refuses the listener: serving
// it without the limit would be failing open behind the operator's back.

import type { FilterConfig } from '../config/types';
import { ConfigError } from '../core/errors';
import { durationToMs, envoyType, knownTypeOfUrl, toPlain, TYPE_LOCAL_RATE_LIMIT, TYPED_STRUCT_URLS } from './envoy-protos';
import { fromProtoJson, Json, structToJson } from './proto-json';

type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const AERAKI_ROUTER = 'aeraki.meta_protocol.filters.router';
export const AERAKI_LOCAL_RATE_LIMIT = 'aeraki.meta_protocol.filters.local_ratelimit';
const AERAKI_GLOBAL_RATE_LIMIT = 'aeraki.meta_protocol.filters.ratelimit';
/** Aeraki's telemetry filters: meltemi's listener telemetry does their work (runtime/telemetry/). */
const METADATA_EXCHANGE = 'aeraki.meta_protocol.filters.metadata_exchange';
const ISTIO_STATS = 'aeraki.meta_protocol.filters.istio_stats';
const ISTIO_STATS_URL = 'type.googleapis.com/aeraki.meta_protocol_proxy.filters.istio_stats.v1alpha.IstioStats';
const STRUCT_URL = 'type.googleapis.com/google.protobuf.Struct';
const STRING_VALUE_URL = 'type.googleapis.com/google.protobuf.StringValue';
const PLUGIN_NAME = /^[a-z0-9_.-]+$/;
/** Aeraki rejects a bucket that refills faster than this (local_ratelimit config). */
const MIN_FILL_INTERVAL_MS = 50;

export interface DecodedFilters {
  readonly filters: FilterConfig[];
  /** What was passed over, for the log and /config_dump. */
  readonly notes: string[];
  /** metadata_exchange was in the list. */
  readonly metadataExchange: boolean;
  /** istio_stats was in the list, with its destination_service if it set one. */
  readonly istioStats: { readonly destinationService: string | undefined } | undefined;
}

export function decodeFilters(list: readonly Plain[], path: string): DecodedFilters {
  const filters: FilterConfig[] = [];
  const notes: string[] = [];
  const passedOver = new Set<string>();
  let metadataExchange = false;
  let istioStats: DecodedFilters['istioStats'];
  list.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    const name = entry.name;
    if (typeof name !== 'string' || !name) throw new ConfigError(`${at}.name`, 'is required');
    if (name === AERAKI_ROUTER) {
      if (i !== list.length - 1) throw new ConfigError(`${at}.name`, 'the router must be the last filter');
      return; // meltemi's router ends every chain
    }
    if (name === METADATA_EXCHANGE) {
      metadataExchange = true;
      return;
    }
    if (name === ISTIO_STATS) {
      // IstioStats { destination_service = 1 }, readable here when sent as JSON (Struct, TypedStruct).
      let destinationService: unknown;
      try {
        const config = entry.config as Plain | undefined;
        const native = config?.type_url === ISTIO_STATS_URL ? toPlain(knownTypeOfUrl(ISTIO_STATS_URL)!, config.value ?? new Uint8Array()) : undefined;
        destinationService = native ? native.destination_service : config ? jsonConfig(config, `${at}.config`).destination_service : undefined;
      } catch {
        passedOver.add(`${name} config`);
      }
      if (typeof destinationService !== 'string' || destinationService === '') destinationService = undefined;
      else if (destinationService.length > 256) throw new ConfigError(`${at}.config.destination_service`, 'is longer than 256 characters');
      istioStats = { destinationService: destinationService as string | undefined };
      return;
    }
    if (name === AERAKI_GLOBAL_RATE_LIMIT) throw new ConfigError(`${at}.name`, `${name} (global rate limit) is not supported; refusing the listener rather than serving it without the limit`);
    if (name === AERAKI_LOCAL_RATE_LIMIT) {
      filters.push({ name: 'local-ratelimit', config: localRateLimit(entry.config, `${at}.config`), failurePolicy: 'fail_closed', field: at });
      return;
    }
    if (name.startsWith('aeraki.')) throw new ConfigError(`${at}.name`, `unknown MetaProtocol filter ${name}`);
    const plugin = name.startsWith('meltemi.filters.') ? name.slice('meltemi.filters.'.length) : name;
    if (!PLUGIN_NAME.test(plugin)) throw new ConfigError(`${at}.name`, `"${name}" is not a filter plugin name (letters, digits, _ . -)`);
    filters.push({ name: plugin, config: jsonConfig(entry.config, `${at}.config`), failurePolicy: 'fail_closed', field: at });
  });
  // One note per kind of filter passed over, however many entries (a hostile list must not flood the log).
  for (const name of passedOver) notes.push(`${path}: ${name} could not be read (only JSON configs are); its defaults apply`);
  return { filters, notes, metadataExchange, istioStats };
}

/** The JSON object a meltemi filter plugin is configured with. */
function jsonConfig(any: Plain | undefined, path: string): Record<string, unknown> {
  if (!any) return {};
  const typeUrl = String(any.type_url ?? '');
  let json: Json;
  if (typeUrl === STRUCT_URL) json = structToJson(toPlain(envoyType('Struct'), any.value ?? new Uint8Array()));
  else if (TYPED_STRUCT_URLS.includes(typeUrl)) json = structToJson(toPlain(envoyType('TypedStruct'), any.value ?? new Uint8Array()).value as Plain | undefined);
  else if (typeUrl === STRING_VALUE_URL) {
    const text = String(toPlain(knownTypeOfUrl(typeUrl)!, any.value ?? new Uint8Array()).value ?? '');
    try {
      json = text ? JSON.parse(text) as Json : {};
    } catch (err) {
      throw new ConfigError(`${path}.value`, `is not JSON: ${(err as Error).message}`);
    }
  } else {
    throw new ConfigError(`${path}.type_url`, `${typeUrl || '(none)'} is not a config meltemi filter plugins take (google.protobuf.Struct, a TypedStruct, or a StringValue holding JSON)`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(path, 'must hold a JSON object');
  return json;
}

/** Aeraki's LocalRateLimit (bytes, or a TypedStruct of it) as the local-ratelimit plugin's config. */
function localRateLimit(any: Plain | undefined, path: string): Record<string, unknown> {
  if (!any) throw new ConfigError(path, 'is required (a LocalRateLimit)');
  const typeUrl = String(any.type_url ?? '');
  let lrl: Plain;
  if (typeUrl === TYPE_LOCAL_RATE_LIMIT) {
    lrl = toPlain(envoyType('LocalRateLimit'), any.value ?? new Uint8Array());
  } else if (TYPED_STRUCT_URLS.includes(typeUrl)) {
    const ts = toPlain(envoyType('TypedStruct'), any.value ?? new Uint8Array());
    if (ts.type_url !== TYPE_LOCAL_RATE_LIMIT) throw new ConfigError(`${path}.type_url`, `must be ${TYPE_LOCAL_RATE_LIMIT}`);
    const type = envoyType('LocalRateLimit');
    lrl = toPlain(type, type.encode(type.fromObject(fromProtoJson(type, structToJson(ts.value as Plain | undefined), `${path}.value`))).finish());
  } else {
    throw new ConfigError(`${path}.type_url`, `${typeUrl || '(none)'}: expected ${TYPE_LOCAL_RATE_LIMIT}`);
  }
  const out: Record<string, unknown> = {};
  if (lrl.token_bucket) out.tokenBucket = tokenBucket(lrl.token_bucket, `${path}.token_bucket`);
  const conditions = (lrl.conditions ?? []) as Plain[];
  if (conditions.length) {
    out.conditions = conditions.map((c, i) => {
      const at = `${path}.conditions[${i}]`;
      if (!c.token_bucket) throw new ConfigError(`${at}.token_bucket`, 'is required');
      return { match: { attributes: attributes(c.match?.metadata ?? [], `${at}.match.metadata`) }, tokenBucket: tokenBucket(c.token_bucket, `${at}.token_bucket`) };
    });
  }
  if (!out.tokenBucket && !out.conditions) throw new ConfigError(path, 'needs token_bucket or conditions');
  return out;
}

function tokenBucket(b: Plain, path: string): Record<string, unknown> {
  const maxTokens = Number(b.max_tokens ?? 0);
  if (maxTokens < 1) throw new ConfigError(`${path}.max_tokens`, 'must be at least 1');
  const perFill = b.tokens_per_fill === undefined ? 1 : Number(b.tokens_per_fill.value ?? 0);
  if (perFill < 1) throw new ConfigError(`${path}.tokens_per_fill`, 'must be at least 1');
  const d = b.fill_interval;
  const ms = d ? durationToMs(d) : 0;
  if (!(ms >= MIN_FILL_INTERVAL_MS)) throw new ConfigError(`${path}.fill_interval`, `must be at least ${MIN_FILL_INTERVAL_MS}ms`);
  if (ms > 86_400_000) throw new ConfigError(`${path}.fill_interval`, 'must be at most a day');
  return { maxTokens, tokensPerFill: perFill, fillInterval: `${Math.round(ms)}ms` };
}

/** Envoy HeaderMatchers over metadata as the plugin's attribute matches (exact, prefix, presence). */
function attributes(matchers: readonly Plain[], path: string): Record<string, unknown> {
  // No prototype: metadata keys such as "constructor" or "__proto__" are keys like any other.
  const out = Object.create(null) as Record<string, unknown>;
  matchers.forEach((h, i) => {
    const at = `${path}[${i}]`;
    const name = h.name;
    if (typeof name !== 'string' || !name) throw new ConfigError(`${at}.name`, 'is required');
    if (Object.prototype.hasOwnProperty.call(out, name)) throw new ConfigError(`${at}.name`, `"${name}" is matched twice; the local rate limit takes one match per key`);
    if (h.invert_match) throw new ConfigError(`${at}.invert_match`, 'is not supported by the local rate limit');
    const spec: string | undefined = h.header_match_specifier;
    const s = spec === 'string_match' ? (h.string_match ?? {}) as Plain : undefined;
    if (s?.ignore_case) throw new ConfigError(`${at}.string_match.ignore_case`, 'is not supported');
    if (spec === undefined || (spec === 'present_match' && h.present_match)) out[name] = null;
    else if (spec === 'exact_match') out[name] = { exact: h.exact_match };
    else if (spec === 'prefix_match') out[name] = { prefix: h.prefix_match };
    else if (s?.match_pattern === 'exact') out[name] = { exact: s.exact };
    else if (s?.match_pattern === 'prefix') out[name] = { prefix: s.prefix };
    else throw new ConfigError(`${at}.${spec}${s ? `.${String(s.match_pattern)}` : ''}`, 'the local rate limit matches exact, prefix or presence only');
  });
  return out;
}
