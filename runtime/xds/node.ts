// The Envoy Node this proxy presents to xDS servers.
import type { XdsConfig } from '../config/types';
import { jsonToStruct } from './proto-json';

export function nodeOf(xds: XdsConfig): Record<string, unknown> {
  const { id, cluster, metadata } = xds.node;
  return { id, cluster, metadata: jsonToStruct(metadata), user_agent_name: 'meltemi' };
}
