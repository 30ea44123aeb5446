// The plugin descriptor returned by meltemi_info (ABI.md §2), parsed and checked field by field.

import { PluginError } from '../core/errors';
import { ABI_MINOR } from '../wasm/abi';

export type PluginKind = 'codec' | 'filter';
export type Correlation = 'order' | 'request_id';

export interface PluginDescriptor {
  readonly abiMinor: number;
  readonly kind: PluginKind;
  readonly name: string;
  readonly protocol: string;
  readonly version: string;
  readonly correlation: Correlation;
  readonly passthroughEncode: boolean;
  /** Filters: the calls beyond on_request the filter wants (ABI 1.1 `calls`; absent: all). */
  readonly calls: ReadonlySet<FilterCall>;
  /** ABI 1.2: the server speaks first (a greeting): the host connects when the client does. */
  readonly serverFirst: boolean;
  /** ABI 1.2: each client connection has one upstream connection of its own, for its life (a session). */
  readonly bindUpstream: boolean;
  /** ABI 1.3: upstream decodes get the `expect` word on every connection, pooled ones too. */
  readonly expectResponses: boolean;
}

export type FilterCall = 'response' | 'timer' | 'done';
const FILTER_CALLS: readonly FilterCall[] = ['response', 'timer', 'done'];

const NAME_RE = /^[a-z0-9_.-]+$/;

export function parseDescriptor(file: string, json: string): PluginDescriptor {
  const bad = (field: string, why: string) => new PluginError('MELTEMI_PLUGIN_INVALID', file, `descriptor field "${field}" ${why}`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `meltemi_info did not return JSON: ${json.slice(0, 80)}`);
  }
  if (typeof raw !== 'object' || raw === null) throw new PluginError('MELTEMI_PLUGIN_INVALID', file, 'descriptor is not an object');
  const d = raw as Record<string, unknown>;
  if (!Number.isInteger(d.abi_minor) || (d.abi_minor as number) < 0) throw bad('abi_minor', 'must be a non-negative integer');
  if ((d.abi_minor as number) > ABI_MINOR) throw bad('abi_minor', `is ${d.abi_minor}; this host supports ABI 1.${ABI_MINOR}`);
  if (d.kind !== 'codec' && d.kind !== 'filter') throw bad('kind', 'must be "codec" or "filter"');
  if (typeof d.name !== 'string' || !NAME_RE.test(d.name)) throw bad('name', `must match ${NAME_RE}`);
  const protocol = d.protocol ?? d.name;
  if (typeof protocol !== 'string' || protocol.length === 0) throw bad('protocol', 'must be a non-empty string');
  const correlation = d.correlation ?? 'order';
  if (correlation !== 'order' && correlation !== 'request_id') throw bad('correlation', 'must be "order" or "request_id"');
  const passthrough = d.passthrough_encode ?? false;
  if (typeof passthrough !== 'boolean') throw bad('passthrough_encode', 'must be a boolean');
  const calls = d.calls ?? FILTER_CALLS;
  if (!Array.isArray(calls) || calls.some((c) => !(FILTER_CALLS as readonly unknown[]).includes(c))) throw bad('calls', `must be a list of ${FILTER_CALLS.join(', ')}`);
  const codecFlag = (field: string, fallback: boolean, minor: number): boolean => {
    const v = d[field] ?? fallback;
    if (typeof v !== 'boolean') throw bad(field, 'must be a boolean');
    if (v && d.kind !== 'codec') throw bad(field, 'is for codecs');
    if (v && (d.abi_minor as number) < minor) throw bad(field, `needs abi_minor ${minor} (ABI 1.${minor})`);
    return v;
  };
  const session = (field: string, fallback: boolean): boolean => codecFlag(field, fallback, 2);
  const serverFirst = session('server_first', false);
  const bindUpstream = session('bind_upstream', serverFirst);
  // A greeting belongs to one upstream connection: relaying it to a client binds the two.
  if (serverFirst && !bindUpstream) throw bad('bind_upstream', 'must be true when server_first is (the greeting belongs to one upstream connection)');
  const expectResponses = codecFlag('expect_responses', false, 3);
  // With request ids the host cannot know which request the next response answers.
  if (expectResponses && correlation !== 'order') throw bad('expect_responses', 'needs correlation "order" (with request ids the next response\'s request is unknown)');
  return {
    expectResponses,
    serverFirst,
    bindUpstream,
    calls: new Set(d.kind === 'filter' ? calls as FilterCall[] : []),
    abiMinor: d.abi_minor as number,
    kind: d.kind,
    name: d.name,
    protocol,
    version: typeof d.version === 'string' ? d.version : '',
    correlation,
    passthroughEncode: passthrough,
  };
}
