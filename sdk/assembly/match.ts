// Metadata matches for filter configuration, in the shape of Aeraki's MetaRouter
// `match.attributes`: { "<key>": { "exact": "…" } | { "prefix": "…" } | null (present) }.
// Every match of a list must hold (AND), as in a MetaRoute.

import { FilterRequest } from "./filter";
import { JsonKind, JsonValue } from "./json";

const EXACT = 0, PREFIX = 1, PRESENT = 2;

export class AttributeMatch {
  constructor(public key: string, public kind: i32, public value: string) {}

  matches(req: FilterRequest): bool {
    const v = req.getBytes(this.key);
    if (v === null) return false;
    if (this.kind == PRESENT) return true;
    const n = String.UTF8.byteLength(this.value);
    return (this.kind == PREFIX ? v.length >= n : v.length == n) && v.equals(0, n, this.value);
  }
}

/** Every match in `list` holds for `req` (an empty list matches every request). */
export function allMatch(list: AttributeMatch[], req: FilterRequest): bool {
  for (let i = 0; i < list.length; i++) if (!list[i].matches(req)) return false;
  return true;
}

/** Why the last readMatch returned null. */
export let matchError: string = "";

/**
 * Reads `{ "attributes": { … } }` (a MetaRoute match); null `match` means no condition. Returns
 * null and sets `matchError` (naming `where`) when it is malformed or uses regex.
 */
export function readMatch(match: JsonValue | null, where: string): AttributeMatch[] | null {
  const out: AttributeMatch[] = [];
  if (match === null) return out;
  const attributes = match.get("attributes");
  if (attributes === null || attributes.kind != JsonKind.Object) {
    matchError = where + ".attributes must be an object";
    return null;
  }
  for (let i = 0; i < attributes.keys.length; i++) {
    const key = attributes.keys[i];
    const m = attributes.items[i];
    if (m.isNull) { out.push(new AttributeMatch(key, PRESENT, "")); continue; }
    const exact = m.get("exact");
    const prefix = m.get("prefix");
    if (exact !== null && exact.kind == JsonKind.String) out.push(new AttributeMatch(key, EXACT, exact.str));
    else if (prefix !== null && prefix.kind == JsonKind.String) out.push(new AttributeMatch(key, PREFIX, prefix.str));
    else {
      matchError = where + ".attributes." + key + " needs exact or prefix (regex is not supported in filters)";
      return null;
    }
  }
  return out;
}
