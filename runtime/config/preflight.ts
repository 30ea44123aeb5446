// What `meltemi run` checks beyond the config's schema, checked without starting anything: the
// plugin directory is readable, every listener's protocol has a codec there that loads, every
// filter is there and accepts its config, and the admin token file is usable. `meltemi validate` runs it so that "valid" means "run will start"
// (short of a port being taken).

import { readAdminToken } from '../admin/admin-access';
import { MeltemiError } from '../core/errors';
import type { Logger } from '../core/logger';
import { PluginRegistry } from '../plugin/plugin-registry';
import { WasmFilter } from '../filter/wasm-filter';
import type { Config } from './types';

/** The error `run` stops with when listener `index` names a protocol no plugin provides. */
export function missingCodec(config: Config, index: number, registry: PluginRegistry): MeltemiError {
  const listener = config.listeners[index];
  const known = registry.codecs().map((p) => p.descriptor.protocol).join(', ') || 'none';
  const rejected = registry.rejected.length ? `; rejected: ${registry.rejected.map((r) => r.reason).join('; ')}` : '';
  return new MeltemiError('MELTEMI_CONFIG_INVALID', `listeners[${index}].protocol: no codec plugin for protocol "${listener.protocol}" in ${config.plugins.directory} (loaded: ${known}${rejected})`);
}

/**
 * Every problem `run` would stop at, as `field: message` lines; empty when it would start.
 * `skip`: top-level sections that had schema errors (their values are defaults, not the user's).
 */
export async function preflight(config: Config, logger: Logger, skip: ReadonlySet<string> = new Set()): Promise<string[]> {
  const problems: string[] = [];
  const registry = new PluginRegistry(logger, config.plugins);
  if (!skip.has('plugins')) try {
    await registry.loadDirectory(config.plugins.directory);
    config.listeners.forEach((l, i) => {
      if (!registry.codec(l.protocol)) problems.push(missingCodec(config, i, registry).message);
      l.filters.forEach((entry, j) => {
        const field = `listeners[${i}].filters[${j}]`;
        const plugin = registry.filter(entry.name);
        if (!plugin) {
          problems.push(`${field}.name: no filter plugin "${entry.name}" in the plugin directory (loaded: ${registry.filters().map((p) => p.name).join(', ') || 'none'})`);
          return;
        }
        try {
          new WasmFilter(plugin, entry, field).close(); // the filter reads its config as run would
        } catch (err) {
          problems.push((err as Error).message);
        }
      });
    });
  } catch (err) {
    problems.push(`plugins.directory: ${(err as Error).message}`);
  }
  if (config.admin?.tokenFile && !skip.has('admin')) {
    try {
      await readAdminToken(config.admin.tokenFile);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}
