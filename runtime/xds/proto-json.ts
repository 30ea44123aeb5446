// Protobuf JSON (what a TypedStruct carries: Aeraki writes its MetaProtocolProxy config that way)
// to the plain objects protobufjs builds messages from, walking the message's reflection: field
// names in snake_case or lowerCamelCase, durations as "1.5s", wrappers as bare values, Any as
// {"@type": …}. Unknown fields are errors naming their path, as Envoy's JSON parsing rejects them.

import protobuf from 'protobufjs';
import { ConfigError } from '../core/errors';

type Plain = Record<string, unknown>;
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Nesting past this is refused: a hostile config must not exhaust the stack. */
const MAX_DEPTH = 64;

const WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue']
  .map((w) => `google.protobuf.${w}`));

const camel = (snake: string) => snake.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
const fullName = (t: protobuf.ReflectionObject) => t.fullName.replace(/^\./, '');

const fieldIndex = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

function fieldsOf(type: protobuf.Type): Map<string, protobuf.Field> {
  let index = fieldIndex.get(type);
  if (!index) {
    index = new Map();
    for (const f of type.fieldsArray) {
      index.set(f.name, f);
      index.set(camel(f.name), f);
    }
    fieldIndex.set(type, index);
  }
  return index;
}

/** A message of `type` written as protobuf JSON, as a plain object `type.fromObject` takes. */
export function fromProtoJson(type: protobuf.Type, json: unknown, path: string): Plain {
  return message(type, json, path, 0);
}

function message(type: protobuf.Type, json: unknown, path: string, depth: number): Plain {
  if (depth > MAX_DEPTH) throw new ConfigError(path, `nested deeper than ${MAX_DEPTH} levels`);
  const name = fullName(type);
  if (name === 'google.protobuf.Struct') return struct(json, path, depth);
  if (name === 'google.protobuf.Value') return value(json, path, depth);
  if (name === 'google.protobuf.ListValue') return { values: list(json, path).map((v, i) => value(v, `${path}[${i}]`, depth + 1)) };
  if (name === 'google.protobuf.Duration') return duration(json, path);
  if (name === 'google.protobuf.Any') return any(type.root, json, path, depth);
  if (WRAPPERS.has(name)) return { value: scalar(type.fields.value, json, path) };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(path, `must be an object (${name})`);
  const fields = fieldsOf(type);
  const out: Plain = {};
  for (const [key, v] of Object.entries(json)) {
    const field = fields.get(key);
    if (!field) throw new ConfigError(`${path}.${key}`, `unknown field of ${name}`);
    const at = `${path}.${key}`;
    if (v === null) continue; // protobuf JSON: null is the default
    field.resolve();
    if (field.map) {
      if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(at, 'must be an object');
      out[field.name] = Object.fromEntries(Object.entries(v as Plain).map(([k, item]) => [k, fieldValue(field, item, `${at}.${k}`, depth)]));
    } else if (field.repeated) {
      out[field.name] = list(v, at).map((item, i) => fieldValue(field, item, `${at}[${i}]`, depth));
    } else {
      out[field.name] = fieldValue(field, v, at, depth);
    }
  }
  return out;
}

function fieldValue(field: protobuf.Field, v: unknown, path: string, depth: number): unknown {
  const t = field.resolvedType;
  if (t instanceof protobuf.Type) return message(t, v, path, depth + 1);
  if (t instanceof protobuf.Enum) {
    // Own keys only, and names only: "2" or "constructor" are not value names.
    if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(t.values, v) && !/^\d/.test(v)) return v;
    if (typeof v === 'number' && Object.values(t.values).includes(v)) return v;
    throw new ConfigError(path, `unknown value ${JSON.stringify(v)} of ${fullName(t)} (expected one of: ${Object.keys(t.values).join(', ')})`);
  }
  return scalar(field, v, path);
}

function scalar(field: protobuf.Field, v: unknown, path: string): unknown {
  switch (field.type) {
    case 'string': case 'bytes':
      if (typeof v !== 'string') throw new ConfigError(path, 'must be a string');
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new ConfigError(path, 'must be true or false');
      return v;
    case 'double': case 'float':
      if (typeof v !== 'number' && !(typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)))) throw new ConfigError(path, 'must be a number');
      return Number(v);
    default: { // the integer types; 64-bit ones may come as strings
      const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw new ConfigError(path, 'must be an integer');
      if (field.type.startsWith('u') && n < 0) throw new ConfigError(path, 'must not be negative');
      const max = field.type === 'uint32' || field.type === 'fixed32' ? 2 ** 32 - 1 : field.type.endsWith('32') ? 2 ** 31 - 1 : Number.MAX_SAFE_INTEGER;
      if (n > max || n < -max - 1) throw new ConfigError(path, 'is out of range');
      return typeof v === 'string' ? v : n;
    }
  }
}

function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new ConfigError(path, 'must be a list');
  return v;
}

function duration(v: unknown, path: string): Plain {
  const m = typeof v === 'string' ? /^(-?)(\d{1,12})(?:\.(\d{1,9}))?s$/.exec(v) : null;
  if (!m) throw new ConfigError(path, 'must be a duration such as "1.5s"');
  const sign = m[1] ? -1 : 1;
  return { seconds: String(sign * Number(m[2])), nanos: sign * Number((m[3] ?? '').padEnd(9, '0')) };
}

function any(root: protobuf.Root, v: unknown, path: string, depth: number): Plain {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(path, 'must be an object with "@type"');
  const { '@type': typeUrl, ...rest } = v as Plain;
  if (typeof typeUrl !== 'string' || !typeUrl.includes('/')) throw new ConfigError(`${path}.@type`, 'must be a type URL');
  const found = root.lookup(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
  // A type this proxy does not know keeps only its URL: whoever reads the Any reports it.
  if (!(found instanceof protobuf.Type)) return { type_url: typeUrl, value: new Uint8Array() };
  // Types with a JSON form of their own carry it under "value".
  const special = found.fullName.startsWith('.google.protobuf.') && !['Empty', 'Any'].some((n) => found.fullName.endsWith(n));
  const plain = message(found, special ? rest.value : rest, path, depth + 1);
  return { type_url: typeUrl, value: found.encode(found.fromObject(plain)).finish() };
}

function struct(v: unknown, path: string, depth: number): Plain {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(path, 'must be an object');
  return { fields: Object.fromEntries(Object.entries(v).map(([k, item]) => [k, value(item, `${path}.${k}`, depth + 1)])) };
}

function value(v: unknown, path: string, depth: number): Plain {
  if (depth > MAX_DEPTH) throw new ConfigError(path, `nested deeper than ${MAX_DEPTH} levels`);
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map((item, i) => value(item, `${path}[${i}]`, depth + 1)) } };
  if (typeof v === 'object') return { structValue: struct(v, path, depth) };
  throw new ConfigError(path, 'is not a JSON value');
}

// protobufjs defines Struct and Value itself, with camelCase field names (stringValue), whatever
// the root's keepCase.

/** A google.protobuf.Struct (plain, from toObject) as the JSON object it stands for. */
export function structToJson(s: Plain | undefined, depth = 0): { [key: string]: Json } {
  if (depth > MAX_DEPTH) throw new ConfigError('(struct)', `nested deeper than ${MAX_DEPTH} levels`);
  const fields = (s?.fields ?? {}) as Record<string, Plain>;
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, valueToJson(v, depth + 1)]));
}

function valueToJson(v: Plain, depth: number): Json {
  if (v.structValue !== undefined) return structToJson(v.structValue as Plain, depth);
  if (v.listValue !== undefined) return (((v.listValue as Plain).values ?? []) as Plain[]).map((item) => valueToJson(item, depth + 1));
  if (v.stringValue !== undefined) return v.stringValue as string;
  if (v.numberValue !== undefined) return v.numberValue as number;
  if (v.boolValue !== undefined) return v.boolValue as boolean;
  return null;
}

/** A JSON object as a google.protobuf.Struct plain object (the control plane's TypedStructs). */
export function jsonToStruct(json: { [key: string]: Json }): Plain {
  return struct(json, '(struct)', 0);
}
