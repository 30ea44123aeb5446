// Well-known metadata keys by id (ABI.md §6.1); index = id. Mirrors sdk/assembly/keys.ts.
export const WELL_KNOWN_KEYS: readonly string[] = [
  '',
  'service',
  'method',
  'version',
  'command',
  'key',
  'interface',
  'group',
  'x-request-id',
  'traceparent',
  'tracestate',
  'x-meta-protocol-application-protocol',
  'x-meta-protocol-real-server-address',
];

const ids = new Map<string, number>(WELL_KNOWN_KEYS.map((k, i) => [k, i] as const).filter(([k]) => k !== ''));

/** The id of a well-known key, or 0. */
export function wellKnownKeyId(name: string): number {
  return ids.get(name) ?? 0;
}
