// fault: fault injection for any protocol. A request that matches may be delayed (paused on a
// host timer: other requests go on meanwhile) and/or aborted with a local error reply of the
// protocol, each with a percentage. The delay, when both apply, comes first (as in Envoy).
//
// config: { "delay": { "fixedDelay": "200ms", "percentage": 50, "match": { "attributes": { … } } },
//           "abort": { "percentage": 10, "kind": "unspecified", "message": "injected fault",
//                      "match": { "attributes": { "method": { "exact": "sayHello" } } } } }
// Attribute matches: exact, prefix, or null (present); no match: every request.

import {
  AttributeMatch, allMatch, CALL_DONE, CALL_TIMER, matchError, readMatch, Bytes, ERR_CONNECT_FAILURE, ERR_NO_HEALTHY_UPSTREAM, ERR_OVER_LIMIT, ERR_TIMEOUT, ERR_UNSPECIFIED,
  FILTER_CONTINUE, Filter, FilterInfo, FilterRequest, JsonKind, JsonValue, jsonError, nowMs, parseJson, registerFilter,
} from "../../sdk/assembly";

export * from "../../sdk/assembly/filter-exports";

/** xorshift32: Math.random would import a host seed the ABI does not provide. */
let rng: u32 = 0x9e3779b9;
function roll(): f64 {
  if (rng == 0x9e3779b9) rng ^= nowMs() | 1;
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return <f64>rng / 4294967296.0 * 100.0;
}

class Fault {
  percentage: f64 = 100;
  matches: AttributeMatch[] = [];

  applies(req: FilterRequest): bool {
    if (!allMatch(this.matches, req)) return false;
    return this.percentage >= 100 || roll() < this.percentage;
  }
}

let problem: string = "";

function readFault(v: JsonValue, where: string, fault: Fault): bool {
  if (v.kind != JsonKind.Object) { problem = where + " must be an object"; return false; }
  const pct = v.get("percentage");
  if (pct !== null) {
    if (pct.kind != JsonKind.Number || pct.num < 0 || pct.num > 100) { problem = where + ".percentage must be a number from 0 to 100"; return false; }
    fault.percentage = pct.num;
  }
  const matches = readMatch(v.get("match"), where + ".match");
  if (matches === null) { problem = matchError; return false; }
  fault.matches = matches;
  return true;
}

function errorKind(name: string): i32 {
  if (name == "unspecified") return ERR_UNSPECIFIED;
  if (name == "over_limit") return ERR_OVER_LIMIT;
  if (name == "timeout") return ERR_TIMEOUT;
  if (name == "no_healthy_upstream") return ERR_NO_HEALTHY_UPSTREAM;
  if (name == "connect_failure") return ERR_CONNECT_FAILURE;
  return -1;
}

class FaultFilter extends Filter {
  delay: Fault | null = null;
  delayMs: i32 = 0;
  abort: Fault | null = null;
  abortKind: i32 = ERR_UNSPECIFIED;
  abortMessage: string = "meltemi: injected fault";
  /** Requests delayed now and to be aborted when the delay ends. */
  abortAfterDelay: Set<i32> = new Set<i32>();

  configure(config: Bytes): string | null {
    const root = config.length == 0 ? new JsonValue() : parseJson(config);
    if (root === null) return "config is not JSON: " + jsonError;
    if (root.kind != JsonKind.Object) return "config must be an object with delay and/or abort";
    const delay = root.get("delay");
    if (delay !== null) {
      const d = new Fault();
      if (!readFault(delay, "delay", d)) return problem;
      const fixed = delay.get("fixedDelay");
      let ms: f64 = NaN;
      if (fixed !== null && fixed.kind == JsonKind.String) {
        const s = fixed.str;
        ms = s.endsWith("ms") ? parseFloat(s.slice(0, s.length - 2)) : s.endsWith("s") ? parseFloat(s.slice(0, s.length - 1)) * 1000 : NaN;
      }
      if (isNaN(ms) || ms < 0 || ms > 3600000) return "delay.fixedDelay must be a duration such as \"200ms\" or \"1s\"";
      this.delay = d;
      this.delayMs = <i32>ms;
    }
    const abort = root.get("abort");
    if (abort !== null) {
      const a = new Fault();
      if (!readFault(abort, "abort", a)) return problem;
      const kind = abort.get("kind");
      if (kind !== null) {
        this.abortKind = kind.kind == JsonKind.String ? errorKind(kind.str) : -1;
        if (this.abortKind < 0) return "abort.kind must be one of unspecified, over_limit, timeout, no_healthy_upstream, connect_failure";
      }
      const message = abort.get("message");
      if (message !== null && message.kind == JsonKind.String) this.abortMessage = message.str;
      this.abort = a;
    }
    if (this.delay === null && this.abort === null) return "needs delay or abort";
    return null;
  }

  onRequest(req: FilterRequest): i32 {
    const abort = this.abort;
    const aborting = abort !== null && abort.applies(req);
    const delay = this.delay;
    if (delay !== null && delay.applies(req)) {
      if (aborting) this.abortAfterDelay.add(req.id);
      return req.pauseFor(this.delayMs);
    }
    return aborting ? req.reject(this.abortKind, this.abortMessage) : FILTER_CONTINUE;
  }

  onTimer(req: FilterRequest, timer: i32): i32 {
    if (!this.abortAfterDelay.has(req.id)) return FILTER_CONTINUE;
    this.abortAfterDelay.delete(req.id);
    return req.reject(this.abortKind, this.abortMessage);
  }

  onDone(reqId: i32): void {
    this.abortAfterDelay.delete(reqId);
  }
}

registerFilter(new FilterInfo("fault", "1.0.0", CALL_TIMER | CALL_DONE), (): Filter => new FaultFilter());
