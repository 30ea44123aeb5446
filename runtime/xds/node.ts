// The Envoy Node this proxy presents to xDS servers.
import type { XdsConfig } from '../config/types';

export function nodeOf(xds: XdsConfig): Record<string, unknown> {
  const { id, cluster, metadata } = xds.node;
  const fields = Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, { string_value: v }]));
  return { id, cluster, metadata: { fields }, user_agent_name: 'meltemi' };
}
