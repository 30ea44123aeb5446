// A MetaProtocolProxy's access_log entries (envoy.config.accesslog.v3.AccessLog) as meltemi
// access logs: the file, stdout and stderr loggers, with their text or JSON format. Operators
// are checked as for a static config, so a format meltemi cannot fill is NACKed naming the field.
// A logger of another kind (gRPC, OpenTelemetry) or an access-log filter is not acted on yet:
// passed over with a note, since logging is observation, never enforcement.

import type { AccessLogConfig } from '../config/types';
import { ConfigError } from '../core/errors';
import { compileJson, compileText, DEFAULT_TEXT_FORMAT } from '../telemetry/access-log-format';
import { knownTypeOfUrl, toPlain } from './envoy-protos';
import { structToJson } from './proto-json';

type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const FILE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const STDOUT = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
const STDERR = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog';

const NO_FILTER = { errorsOnly: false, minDurationMs: 0, responseFlags: [], samplePercent: 100 } as const;

/** Envoy's SubstitutionFormatString (or a FileAccessLog's deprecated format fields) as a meltemi format. */
function formatOf(f: Plain | undefined, legacy: Plain, path: string): AccessLogConfig['format'] {
  const json = f?.json_format ?? legacy.json_format ?? legacy.typed_json_format;
  if (json !== undefined) {
    const fields = structToJson(json) as Record<string, unknown>;
    compileJson(fields, `${path}.json_format`);
    return { kind: 'json', fields: fields as Record<string, string> };
  }
  const text = f?.text_format_source?.inline_string ?? f?.text_format ?? legacy.format;
  if (f?.text_format_source !== undefined && f.text_format_source.inline_string === undefined) {
    throw new ConfigError(`${path}.text_format_source`, 'only inline_string is supported (not a file or bytes)');
  }
  if (typeof text === 'string' && text !== '') {
    compileText(text, `${path}.text_format`);
    return { kind: 'text', text };
  }
  return { kind: 'text', text: DEFAULT_TEXT_FORMAT };
}

export function decodeAccessLogs(list: readonly Plain[], path: string, notes: string[]): AccessLogConfig[] {
  const out: AccessLogConfig[] = [];
  list.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    const any = entry.typed_config as Plain | undefined;
    const typeUrl = String(any?.type_url ?? '');
    if (![FILE, STDOUT, STDERR].includes(typeUrl)) {
      notes.push(`${at}: ${typeUrl || '(no typed_config)'} is not an access logger meltemi runs (file, stdout, stderr); passed over`);
      return;
    }
    if (entry.filter !== undefined) notes.push(`${at}.filter: access-log filters from LDS are not applied yet; every request is logged`);
    const config = toPlain(knownTypeOfUrl(typeUrl)!, any!.value ?? new Uint8Array());
    const logPath = typeUrl === FILE ? config.path : typeUrl === STDOUT ? '/dev/stdout' : '/dev/stderr';
    if (typeof logPath !== 'string' || !logPath.startsWith('/')) throw new ConfigError(`${at}.typed_config.path`, 'must be an absolute path');
    out.push({ path: logPath, format: formatOf(config.log_format as Plain | undefined, config, `${at}.typed_config.log_format`), filter: NO_FILTER, field: at });
  });
  return out;
}
