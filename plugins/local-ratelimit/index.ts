// local-ratelimit: token buckets in the shape of Aeraki's MetaRouter localRateLimit. A request
// takes a token from the bucket of the first condition whose match it satisfies, else from the
// default bucket (if any); with no token left it gets the protocol's over-limit error.
//
// config: { "tokenBucket": { "maxTokens": 100, "tokensPerFill": 100, "fillInterval": "1s" },
//           "conditions": [ { "match": { "attributes": { "method": { "exact": "get" } } },
//                             "tokenBucket": { … } } ] }
// Attribute matches: exact, prefix, or null (present). Buckets refill lazily from the clock, and
// live in the plugin instance, so they are shared by every connection of the listener.

import {
  AttributeMatch, Bytes, ERR_OVER_LIMIT, Metric, defineCounter, FILTER_CONTINUE, Filter, FilterInfo, FilterRequest, JsonKind, JsonValue,
  allMatch, jsonError, matchError, nowMs, parseJson, readMatch, registerFilter,
} from "../../sdk/assembly";

export * from "../../sdk/assembly/filter-exports";

class TokenBucket {
  tokens: f64;
  last: u32;
  constructor(public maxTokens: f64, public tokensPerFill: f64, public fillMs: u32) {
    this.tokens = maxTokens;
    this.last = nowMs();
  }

  take(): bool {
    const now = nowMs();
    const fills = (now - this.last) / this.fillMs; // u32 arithmetic: survives the clock wrapping
    if (fills > 0) {
      this.tokens = min(this.maxTokens, this.tokens + <f64>fills * this.tokensPerFill);
      this.last += fills * this.fillMs;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

class Condition {
  constructor(public matches: AttributeMatch[], public bucket: TokenBucket) {}
}

let problem: string = "";

/** A duration as protobuf JSON writes it ("1s", "0.5s") or with "ms"; 0 when invalid. */
function durationMs(v: JsonValue | null): u32 {
  if (v === null || v.kind != JsonKind.String) return 0;
  const s = v.str;
  let ms: f64 = 0;
  if (s.endsWith("ms")) ms = parseFloat(s.slice(0, s.length - 2));
  else if (s.endsWith("s")) ms = parseFloat(s.slice(0, s.length - 1)) * 1000;
  if (isNaN(ms) || ms < 1 || ms > 86400000) return 0;
  return <u32>ms;
}

function readBucket(v: JsonValue | null, where: string): TokenBucket | null {
  if (v === null || v.kind != JsonKind.Object) { problem = where + " must be an object"; return null; }
  const max = v.get("maxTokens");
  const per = v.get("tokensPerFill");
  if (max === null || max.kind != JsonKind.Number || max.num < 1) { problem = where + ".maxTokens must be a number >= 1"; return null; }
  const perFill = per === null ? max.num : per.num;
  if (per !== null && (per.kind != JsonKind.Number || per.num < 1)) { problem = where + ".tokensPerFill must be a number >= 1"; return null; }
  const fill = durationMs(v.get("fillInterval"));
  if (fill == 0) { problem = where + ".fillInterval must be a duration such as \"1s\" or \"100ms\""; return null; }
  return new TokenBucket(max.num, perFill, fill);
}

/** meltemi_plugin_metric_local_ratelimit_requests_total{outcome="allowed"|"limited"} on /metrics. */
let requests: Metric = new Metric(0);
const ALLOWED: string[] = ["allowed"];
const LIMITED: string[] = ["limited"];

class LocalRateLimit extends Filter {
  defaultBucket: TokenBucket | null = null;
  conditions: Condition[] = [];

  configure(config: Bytes): string | null {
    const root = config.length == 0 ? new JsonValue() : parseJson(config);
    if (root === null) return "config is not JSON: " + jsonError;
    if (root.kind != JsonKind.Object) return "config must be an object with tokenBucket and/or conditions";
    const bucket = root.get("tokenBucket");
    if (bucket !== null) {
      this.defaultBucket = readBucket(bucket, "tokenBucket");
      if (this.defaultBucket === null) return problem;
    }
    const conditions = root.get("conditions");
    if (conditions !== null) {
      if (conditions.kind != JsonKind.Array) return "conditions must be a list";
      for (let i = 0; i < conditions.items.length; i++) {
        const c = conditions.items[i];
        const where = "conditions[" + i.toString() + "]";
        const matches = readMatch(c.get("match"), where + ".match");
        if (matches === null) return matchError;
        const b = readBucket(c.get("tokenBucket"), where + ".tokenBucket");
        if (b === null) return problem;
        this.conditions.push(new Condition(matches, b));
      }
    }
    if (this.defaultBucket === null && this.conditions.length == 0) return "needs tokenBucket or conditions";
    requests = defineCounter("requests_total", ["outcome"]);
    return null;
  }

  private decide(req: FilterRequest, allowed: bool): i32 {
    requests.record(allowed ? ALLOWED : LIMITED, 1);
    return allowed ? FILTER_CONTINUE : req.reject(ERR_OVER_LIMIT, "meltemi: rate limited");
  }

  onRequest(req: FilterRequest): i32 {
    for (let i = 0; i < this.conditions.length; i++) {
      const c = this.conditions[i];
      if (allMatch(c.matches, req)) return this.decide(req, c.bucket.take());
    }
    const b = this.defaultBucket;
    return b === null ? FILTER_CONTINUE : this.decide(req, b.take());
  }
}

registerFilter(new FilterInfo("local-ratelimit", "1.0.0", 0), (): Filter => new LocalRateLimit());
