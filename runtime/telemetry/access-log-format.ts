// Lines are byte strings (latin1, one char per byte), as metadata values are: a client's UTF-8
// comes out as the bytes it sent, and the format's own text is turned into its UTF-8 bytes when
// compiled. The sink writes them as latin1, which is a plain copy.
//
// Envoy's access-log format strings, with generic_proxy's and MetaProtocol Proxy's operators for
// any protocol: `%OPERATOR%` and `%OPERATOR(arg)%` or `%OPERATOR(arg):N%` (cut to N characters),
// compiled once into a list of literal strings and field readers. A JSON format maps field names
// to single operators (or strings holding operators), as Envoy's json_format does.

import { ConfigError } from '../core/errors';
import { recordKey, recordMethod, recordService, type RequestRecord } from './request-record';
import { LineOut } from './line-out';

type Reader = (r: RequestRecord) => string | number | null;

const meta = (key: string): Reader => (r) => r.req.meta?.get(key) ?? null;
const responseMeta = (key: string): Reader => (r) => r.responseMeta?.get(key) ?? null;

// Formatting a date costs more than the rest of a log line: requests read in the same
// millisecond share one string.
let isoMs = -1;
let iso = '';
function isoTime(ms: number): string {
  const whole = Math.floor(ms);
  if (whole !== isoMs) {
    isoMs = whole;
    iso = new Date(whole).toISOString();
  }
  return iso;
}

/** Operators without an argument. */
const OPERATORS: Record<string, Reader> = {
  START_TIME: (r) => isoTime(r.startMs),
  DURATION: (r) => Math.round(r.durationMs),
  RESPONSE_CODE: (r) => r.code,
  GENERIC_RESPONSE_CODE: (r) => r.code,
  RESPONSE_FLAGS: (r) => r.flags,
  RESPONSE_CODE_DETAILS: (r) => r.details,
  BYTES_RECEIVED: (r) => r.req.requestBytes,
  BYTES_SENT: (r) => r.responseBytes,
  UPSTREAM_HOST: (r) => r.req.upstreamEndpoint?.label ?? null,
  UPSTREAM_CLUSTER: (r) => r.req.stats?.cluster || null,
  UPSTREAM_CLUSTER_RAW: (r) => r.req.stats?.cluster || null,
  ROUTE_NAME: (r) => r.req.stats?.route || null,
  UPSTREAM_REQUEST_ATTEMPT_COUNT: (r) => r.req.tryId,
  DOWNSTREAM_REMOTE_ADDRESS: (r) => r.downstreamRemote,
  DOWNSTREAM_LOCAL_ADDRESS: (r) => r.downstreamLocal,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (r) => r.downstreamRemote.slice(0, r.downstreamRemote.lastIndexOf(':')).replace(/^\[|\]$/g, ''),
  UPSTREAM_LOCAL_ADDRESS: () => null,
  UPSTREAM_TRANSPORT_FAILURE_REASON: () => null,
  CONNECTION_TERMINATION_DETAILS: () => null,
  REQUESTED_SERVER_NAME: () => null,
  PROTOCOL: (r) => r.protocol,
  METHOD: recordMethod,
  PATH: (r) => {
    const service = recordService(r);
    const method = recordMethod(r);
    return service !== null && method !== null ? `${service}/${method}` : service ?? recordKey(r);
  },
  HOST: recordService,
  LISTENER_NAME: (r) => r.listener,
  TRACE_ID: (r) => r.req.traceId || null,
};

/** HTTP pseudo-headers in Envoy's REQ(): what a meta-protocol request has in their place. */
const PSEUDO: Record<string, Reader> = {
  ':method': (r) => OPERATORS.METHOD(r),
  ':path': (r) => OPERATORS.PATH(r),
  ':authority': (r) => OPERATORS.HOST(r),
};

/** Envoy's REQ(A?B): the first of A, B that is present; keys case-insensitive as HTTP headers. */
const headers = (lookup: (key: string) => Reader) => (arg: string): Reader => {
  const readers = arg.split('?').map((k) => k.toLowerCase()).map((k) => PSEUDO[k] ?? lookup(k));
  return readers.length === 1 ? readers[0] : (r) => {
    for (const read of readers) {
      const v = read(r);
      if (v !== null) return v;
    }
    return null;
  };
};

/** Operators that take an argument. */
const KEYED: Record<string, (key: string) => Reader> = {
  REQUEST_PROPERTY: meta,
  RESPONSE_PROPERTY: responseMeta,
  REQ: headers(meta),
  RESP: headers(responseMeta),
  // The strftime argument is not applied: the time is always ISO 8601 with milliseconds.
  START_TIME: () => OPERATORS.START_TIME,
};

export const OPERATOR_NAMES: readonly string[] = [...Object.keys(OPERATORS), ...Object.keys(KEYED).map((k) => `${k}(key)`)];

const TOKEN = /%([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?%/g;
/** Longest field value written, whatever the operator (a client controls metadata values). */
const MAX_FIELD = 4096;

function reader(name: string, arg: string | undefined, cut: string | undefined, field: string): Reader {
  let read: Reader;
  if (arg !== undefined) {
    const keyed = KEYED[name];
    if (!keyed) throw new ConfigError(field, `%${name}(…)% is not an operator that takes an argument (those are ${Object.keys(KEYED).join(', ')})`);
    if (arg === '') throw new ConfigError(field, `%${name}()% needs a metadata key`);
    read = keyed(arg);
  } else {
    const op = OPERATORS[name];
    if (!op) throw new ConfigError(field, `%${name}% is not a known operator (known: ${OPERATOR_NAMES.join(', ')})`);
    read = op;
  }
  if (cut === undefined && SAFE.has(read)) return read;
  const max = cut === undefined ? MAX_FIELD : Math.min(Number(cut), MAX_FIELD);
  return (r) => {
    const v = read(r);
    return typeof v === 'string' && v.length > max ? v.slice(0, max) : v;
  };
}

/**
 * Operators whose values this proxy makes (numbers, its own names, hex, addresses): never longer
 * than a field may be and never holding a control character, so neither cut nor escaped.
 */
const SAFE = new Set<Reader>(['START_TIME', 'DURATION', 'RESPONSE_CODE', 'GENERIC_RESPONSE_CODE', 'RESPONSE_FLAGS', 'RESPONSE_CODE_DETAILS',
  'BYTES_RECEIVED', 'BYTES_SENT', 'UPSTREAM_HOST', 'UPSTREAM_REQUEST_ATTEMPT_COUNT', 'DOWNSTREAM_REMOTE_ADDRESS', 'DOWNSTREAM_LOCAL_ADDRESS',
  'UPSTREAM_LOCAL_ADDRESS', 'UPSTREAM_TRANSPORT_FAILURE_REASON', 'CONNECTION_TERMINATION_DETAILS', 'REQUESTED_SERVER_NAME', 'TRACE_ID'].map((n) => OPERATORS[n]));

export type LineFormatter = (r: RequestRecord) => string;

/** Writes a line into a LineOut (the text format's fast form). */
export type LineWriter = (r: RequestRecord, out: LineOut) => void;

/** Compiles a text format into a writer of bytes (what access logs use); see compileText. */
export function compileTextWriter(format: string, field: string): LineWriter {
  const { head, after, readers, safe } = parseText(format, field);
  return (r, out) => {
    out.bytes(head);
    for (let i = 0; i < readers.length; i++) {
      const v = readers[i](r);
      if (v === null) out.bytes('-');
      else if (typeof v === 'number') out.number(v);
      else if (safe[i]) out.bytes(v);
      else out.escaped(v);
      out.bytes(after[i]);
    }
  };
}

/**
 * Compiles a text format into a function returning the line (for JSON fields made of text, and
 * tests); the same writer as access logs, into a buffer of its own. `field` names it in errors.
 * The line ends with a newline if the format does not.
 */
export function compileText(format: string, field: string): LineFormatter {
  const writer = compileTextWriter(format, field);
  const out = new LineOut(Buffer.allocUnsafe(1024), 0, (o, need) => {
    const bigger = Buffer.allocUnsafe((o.pos + need) * 2);
    o.buf.copy(bigger, 0, 0, o.pos);
    o.buf = bigger;
  });
  return (r) => {
    out.pos = 0;
    writer(r, out);
    return out.buf.latin1Slice(0, out.pos);
  };
}

function parseText(format: string, field: string): { head: string; after: string[]; readers: Reader[]; safe: boolean[] } {
  const literals: string[] = [];
  const readers: Reader[] = [];
  let last = 0;
  for (const m of format.matchAll(TOKEN)) {
    literals.push(format.slice(last, m.index));
    readers.push(reader(m[1], m[2], m[3], field));
    last = m.index! + m[0].length;
  }
  let tail = format.slice(last);
  const bytes = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
  for (const literal of [...literals, tail]) {
    const stray = /%[A-Z_]{2,}/.exec(literal);
    if (stray) throw new ConfigError(field, `has a malformed or unterminated operator at "${literal.slice(stray.index, stray.index + 40)}" (operators are %NAME%, %NAME(key)% or %NAME:N%)`);
  }
  if (!tail.endsWith('\n')) tail += '\n';
  // after[i]: the text after the i-th operator (the tail after the last).
  const head = bytes(readers.length > 0 ? literals[0] : tail);
  const after = readers.length > 0 ? [...literals.slice(1), tail].map(bytes) : [];
  return { head, after, readers, safe: readers.map((read) => SAFE.has(read)) };
}

/** Compiles a JSON format: each value is an operator string (its type kept: numbers stay numbers) or a literal. */
/** A byte string (latin1) as the text its bytes are in UTF-8; invalid sequences become U+FFFD. */
function utf8Text(v: string): string | undefined {
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) >= 0x80) return Buffer.from(v, 'latin1').toString('utf8');
  return undefined;
}

/**
 * Compiles a JSON format: each value is an operator string (its type kept: numbers stay numbers)
 * or text with operators. A JSON line must be valid UTF-8 whatever bytes a client sent, so values
 * with non-ASCII bytes are decoded as UTF-8 (invalid bytes become U+FFFD) and the line encoded again.
 */
export function compileJson(format: Readonly<Record<string, unknown>>, field: string): LineFormatter {
  const fields: Array<[string, Reader]> = Object.entries(format).map(([name, value]) => {
    if (typeof value !== 'string') throw new ConfigError(`${field}.${name}`, 'must be a string (an operator such as "%DURATION%", or text)');
    const single = /^%([A-Z_]+)(?:\(([^)]*)\))?(?::(\d+))?%$/.exec(value);
    if (single) return [name, reader(single[1], single[2], single[3], `${field}.${name}`)];
    const line = compileText(value, `${field}.${name}`);
    return [name, (r: RequestRecord) => line(r).slice(0, -1)];
  });
  const asciiNames = fields.every(([name]) => utf8Text(name) === undefined);
  return (r) => {
    const out: Record<string, string | number | null> = {};
    let encode = !asciiNames;
    for (const [name, read] of fields) {
      const v = read(r);
      if (typeof v === 'string') {
        const text = utf8Text(v);
        if (text !== undefined) {
          out[name] = text;
          encode = true;
          continue;
        }
      }
      out[name] = v;
    }
    const json = `${JSON.stringify(out)}\n`;
    return encode ? Buffer.from(json, 'utf8').toString('latin1') : json;
  };
}

/** Envoy's default text format, with the request line as generic_proxy fills it. */
export const DEFAULT_TEXT_FORMAT = '[%START_TIME%] "%METHOD% %PATH% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "%UPSTREAM_HOST%" "%UPSTREAM_CLUSTER%" "%ROUTE_NAME%" "%DOWNSTREAM_REMOTE_ADDRESS%"\n';

/** Istio's JSON access log fields (1.18+), filled as far as a non-HTTP request has them. */
export const ISTIO_JSON_FORMAT: Readonly<Record<string, string>> = {
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%METHOD%',
  path: '%PATH%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  x_forwarded_for: '%REQUEST_PROPERTY(x-forwarded-for)%',
  user_agent: '%REQUEST_PROPERTY(user-agent)%',
  request_id: '%REQUEST_PROPERTY(x-request-id)%',
  authority: '%HOST%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  trace_id: '%TRACE_ID%',
};
