// authz: allow and deny by request metadata, for any protocol (interface, method, command, key
// prefix …), with Istio AuthorizationPolicy's order: a request that matches a deny rule is
// refused; otherwise, when allow rules exist, it must match one of them.
//
// config: { "deny":  [ { "attributes": { "command": { "exact": "FLUSHALL" } } } ],
//           "allow": [ { "attributes": { "key": { "prefix": "public:" } } } ],
//           "message": "meltemi: denied" }
// A refused request gets the protocol's error reply (kind PERMISSION_DENIED).

import {
  AttributeMatch, Bytes, ERR_PERMISSION_DENIED, FILTER_CONTINUE, Filter, FilterInfo, FilterRequest, JsonKind, JsonValue,
  allMatch, jsonError, matchError, parseJson, readMatch, registerFilter,
} from "../../sdk/assembly";

export * from "../../sdk/assembly/filter-exports";

let problem: string = "";

function readRules(v: JsonValue | null, where: string, out: AttributeMatch[][]): bool {
  if (v === null) return true;
  if (v.kind != JsonKind.Array) { problem = where + " must be a list"; return false; }
  for (let i = 0; i < v.items.length; i++) {
    const rule = readMatch(v.items[i], where + "[" + i.toString() + "]");
    if (rule === null) { problem = matchError; return false; }
    if (rule.length == 0) { problem = where + "[" + i.toString() + "] needs attributes"; return false; }
    out.push(rule);
  }
  return true;
}

function anyRule(rules: AttributeMatch[][], req: FilterRequest): bool {
  for (let i = 0; i < rules.length; i++) if (allMatch(rules[i], req)) return true;
  return false;
}

class Authz extends Filter {
  deny: AttributeMatch[][] = [];
  allow: AttributeMatch[][] = [];
  message: string = "meltemi: denied by authorization policy";

  configure(config: Bytes): string | null {
    const root = config.length == 0 ? new JsonValue() : parseJson(config);
    if (root === null) return "config is not JSON: " + jsonError;
    if (root.kind != JsonKind.Object) return "config must be an object with deny and/or allow";
    if (!readRules(root.get("deny"), "deny", this.deny)) return problem;
    if (!readRules(root.get("allow"), "allow", this.allow)) return problem;
    const message = root.get("message");
    if (message !== null && message.kind == JsonKind.String) this.message = message.str;
    if (this.deny.length == 0 && this.allow.length == 0) return "needs deny or allow rules";
    return null;
  }

  onRequest(req: FilterRequest): i32 {
    if (anyRule(this.deny, req)) return req.reject(ERR_PERMISSION_DENIED, this.message);
    if (this.allow.length > 0 && !anyRule(this.allow, req)) return req.reject(ERR_PERMISSION_DENIED, this.message);
    return FILTER_CONTINUE;
  }
}

registerFilter(new FilterInfo("authz", "1.0.0", 0), (): Filter => new Authz());
