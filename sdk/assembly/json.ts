// A small JSON reader for plugin configuration (a filter's `config`, a codec's `codec_config`):
// parses UTF-8 JSON into a tree of JsonValue. Configuration is read once, so this favours
// clarity over speed. Numbers are f64; object keys keep their order.

import { Bytes } from "./bytes";

export enum JsonKind { Null, Bool, Number, String, Array, Object }

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: JsonValue[] = [];
  keys: string[] = [];

  /** The member `key` of an object, or null (also when this is not an object). */
  get(key: string): JsonValue | null {
    if (this.kind != JsonKind.Object) return null;
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.items[i];
    return null;
  }

  get isNull(): bool { return this.kind == JsonKind.Null; }
}

/** Parses `input`; returns null and sets `jsonError` when it is not valid JSON. */
export function parseJson(input: Bytes): JsonValue | null {
  const p = new JsonParser(input);
  jsonError = "";
  const v = p.value();
  if (v !== null) {
    p.skipSpace();
    if (p.pos != input.length) { jsonError = "unexpected bytes after the value at " + p.pos.toString(); return null; }
  }
  return v;
}

/** Why the last parseJson returned null. */
export let jsonError: string = "";

class JsonParser {
  pos: i32 = 0;
  constructor(private input: Bytes) {}

  skipSpace(): void {
    while (this.pos < this.input.length) {
      const c = this.input.at(this.pos);
      if (c != 32 && c != 9 && c != 10 && c != 13) break;
      this.pos++;
    }
  }

  private bad(what: string): JsonValue | null {
    jsonError = what + " at " + this.pos.toString();
    return null;
  }

  value(): JsonValue | null {
    this.skipSpace();
    if (this.pos >= this.input.length) return this.bad("unexpected end");
    const c = this.input.at(this.pos);
    const v = new JsonValue();
    if (c == 123) return this.object(v);
    if (c == 91) return this.array(v);
    if (c == 34) {
      const s = this.string();
      if (s === null) return null;
      v.kind = JsonKind.String;
      v.str = s;
      return v;
    }
    if (this.input.equals(this.pos, 4, "true")) { this.pos += 4; v.kind = JsonKind.Bool; v.bool = true; return v; }
    if (this.input.equals(this.pos, 5, "false")) { this.pos += 5; v.kind = JsonKind.Bool; return v; }
    if (this.input.equals(this.pos, 4, "null")) { this.pos += 4; return v; }
    return this.number(v);
  }

  private object(v: JsonValue): JsonValue | null {
    v.kind = JsonKind.Object;
    this.pos++;
    this.skipSpace();
    if (this.pos < this.input.length && this.input.at(this.pos) == 125) { this.pos++; return v; }
    while (true) {
      this.skipSpace();
      if (this.pos >= this.input.length || this.input.at(this.pos) != 34) return this.bad("expected a key");
      const key = this.string();
      if (key === null) return null;
      this.skipSpace();
      if (this.pos >= this.input.length || this.input.at(this.pos) != 58) return this.bad("expected ':'");
      this.pos++;
      const item = this.value();
      if (item === null) return null;
      v.keys.push(key);
      v.items.push(item);
      this.skipSpace();
      if (this.pos >= this.input.length) return this.bad("unexpected end in an object");
      const c = this.input.at(this.pos++);
      if (c == 125) return v;
      if (c != 44) return this.bad("expected ',' or '}'");
    }
  }

  private array(v: JsonValue): JsonValue | null {
    v.kind = JsonKind.Array;
    this.pos++;
    this.skipSpace();
    if (this.pos < this.input.length && this.input.at(this.pos) == 93) { this.pos++; return v; }
    while (true) {
      const item = this.value();
      if (item === null) return null;
      v.items.push(item);
      this.skipSpace();
      if (this.pos >= this.input.length) return this.bad("unexpected end in an array");
      const c = this.input.at(this.pos++);
      if (c == 93) return v;
      if (c != 44) return this.bad("expected ',' or ']'");
    }
  }

  private string(): string | null {
    this.pos++; // opening quote
    let s = "";
    let start = this.pos;
    while (this.pos < this.input.length) {
      const c = this.input.at(this.pos);
      if (c == 34) {
        s += this.input.toString(start, this.pos - start);
        this.pos++;
        return s;
      }
      if (c == 92) {
        s += this.input.toString(start, this.pos - start);
        if (this.pos + 1 >= this.input.length) break;
        const e = this.input.at(this.pos + 1);
        if (e == 110) s += "\n"; else if (e == 116) s += "\t"; else if (e == 114) s += "\r";
        else if (e == 117 && this.pos + 5 < this.input.length) {
          s += String.fromCharCode(<i32>parseInt(this.input.toString(this.pos + 2, 4), 16));
          this.pos += 4;
        } else s += String.fromCharCode(e);
        this.pos += 2;
        start = this.pos;
        continue;
      }
      this.pos++;
    }
    jsonError = "unterminated string";
    return null;
  }

  private number(v: JsonValue): JsonValue | null {
    const start = this.pos;
    while (this.pos < this.input.length) {
      const c = this.input.at(this.pos);
      if ((c >= 48 && c <= 57) || c == 45 || c == 43 || c == 46 || c == 101 || c == 69) this.pos++;
      else break;
    }
    if (this.pos == start) return this.bad("unexpected character");
    v.kind = JsonKind.Number;
    v.num = parseFloat(this.input.toString(start, this.pos - start));
    if (isNaN(v.num)) return this.bad("bad number");
    return v;
  }
}
