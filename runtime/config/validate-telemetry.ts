// The `telemetry:` section and listeners' access logs: Istio metrics, access logs, tracing.

import { isAbsolute, resolve } from 'node:path';
import type { AccessLogConfig, TelemetryConfig, TracingConfig } from './types';
import type { Field } from './field';
import { compileJson, compileText, DEFAULT_TEXT_FORMAT, ISTIO_JSON_FORMAT } from '../telemetry/access-log-format';
import { RESPONSE_FLAGS } from '../telemetry/response-flags';

const MAX_PORT = 65535;
const WORKLOAD_KEYS = { workload: 'workload', namespace: 'namespace', app: 'app', version: 'version', canonical_service: 'canonicalService', canonical_revision: 'canonicalRevision', cluster: 'cluster' } as const;

export const TELEMETRY_DEFAULTS: TelemetryConfig = { workload: {}, istioMetrics: true, accessLog: [], tracing: undefined };

export function readTelemetry(f: Field, baseDir: string): TelemetryConfig {
  if (!f.present) return TELEMETRY_DEFAULTS;
  f.only(['workload', 'istio_metrics', 'access_log', 'tracing']);
  const workloadField = f.child('workload');
  const workload: Record<string, string> = {};
  if (workloadField.present) {
    workloadField.only(Object.keys(WORKLOAD_KEYS));
    for (const [key, name] of Object.entries(WORKLOAD_KEYS)) {
      const v = workloadField.get(key, (c) => (c.present ? c.string({ nonEmpty: true, max: 256 }) : undefined), undefined);
      if (v !== undefined) workload[name] = v;
    }
  }
  return {
    workload,
    istioMetrics: f.child('istio_metrics').or((c) => c.boolean(), true),
    accessLog: readAccessLogs(f.child('access_log'), baseDir),
    tracing: f.child('tracing').or((t) => readTracing(t), undefined),
  };
}

export function readAccessLogs(f: Field, baseDir: string): AccessLogConfig[] {
  if (!f.present) return [];
  return f.items().map((item) => item.collect(() => readAccessLog(item, baseDir), undefined)).filter((c): c is AccessLogConfig => c !== undefined);
}

function readAccessLog(f: Field, baseDir: string): AccessLogConfig {
  f.only(['path', 'format', 'json_format', 'json', 'filter']);
  const path = f.child('path').or((p) => p.string({ nonEmpty: true }), '/dev/stdout');
  const formats = ['format', 'json_format', 'json'].filter((k) => f.child(k).present);
  if (formats.length > 1) f.fail(`takes one of format, json_format or json, not ${formats.join(' and ')}`);
  let format: AccessLogConfig['format'] = { kind: 'text', text: DEFAULT_TEXT_FORMAT };
  const json = f.child('json');
  if (json.present && json.boolean()) format = { kind: 'json', fields: ISTIO_JSON_FORMAT };
  const text = f.child('format');
  if (text.present) {
    format = { kind: 'text', text: text.string({ nonEmpty: true, max: 4096 }) };
    compileText(format.text, text.path);
  }
  const jsonFormat = f.child('json_format');
  if (jsonFormat.present) {
    const fields = jsonFormat.object();
    if (Object.keys(fields).length === 0) jsonFormat.fail('must name at least one field');
    format = { kind: 'json', fields: fields as Record<string, string> };
    compileJson(fields, jsonFormat.path);
  }
  const filter = f.child('filter');
  if (filter.present) filter.only(['errors_only', 'min_duration', 'response_flags', 'sample_percent']);
  const flagsField = filter.present ? filter.child('response_flags') : undefined;
  const responseFlags = flagsField?.present ? flagsField.items().map((i) => i.oneOf(RESPONSE_FLAGS)) : [];
  return {
    path: path.startsWith('/dev/std') || isAbsolute(path) ? path : resolve(baseDir, path),
    format,
    filter: {
      errorsOnly: filter.present ? filter.child('errors_only').or((c) => c.boolean(), false) : false,
      minDurationMs: filter.present ? filter.child('min_duration').or((c) => c.durationMs(), 0) : 0,
      responseFlags,
      samplePercent: filter.present ? filter.child('sample_percent').or((c) => c.number(0, 100), 100) : 100,
    },
    field: f.path,
  };
}

function readTracing(f: Field): TracingConfig {
  f.only(['sampling', 'otlp', 'service_name', 'flush_interval', 'max_queue_size', 'max_tag_length']);
  const otlp = f.child('otlp');
  if (!otlp.present) otlp.fail('is required: the OTLP/gRPC collector spans go to ({address, port})');
  otlp.only(['address', 'port', 'timeout']);
  return {
    samplingPercent: f.child('sampling').or((c) => c.number(0, 100), 1),
    otlp: {
      address: otlp.child('address').or((a) => a.string({ nonEmpty: true }), '127.0.0.1'),
      port: otlp.child('port').or((p) => p.integer(1, MAX_PORT), 4317),
      timeoutMs: otlp.child('timeout').or((t) => t.durationMs(), 10_000),
    },
    serviceName: f.child('service_name').or((c) => c.string({ nonEmpty: true, max: 256 }), undefined),
    flushIntervalMs: f.child('flush_interval').or((c) => c.durationMs(), 1000),
    maxQueueSize: f.child('max_queue_size').or((c) => c.integer(1, 1_000_000), 2048),
    maxTagLength: f.child('max_tag_length').or((c) => c.integer(1, 65536), 256),
  };
}
