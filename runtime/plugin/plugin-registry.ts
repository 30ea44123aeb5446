// Loads every .wasm in the plugin directory and indexes codecs by protocol name. A plugin that
// fails validation is logged with its file and reason, counted, and left out; the others load.

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginError } from '../core/errors';
import type { Logger } from '../core/logger';
import { CodecPlugin } from './codec-plugin';
import { loadPluginFile } from './plugin-loader';

export interface RejectedPlugin {
  readonly file: string;
  readonly code: string;
  readonly reason: string;
}

export class PluginRegistry {
  private readonly byProtocol = new Map<string, CodecPlugin>();
  readonly rejected: RejectedPlugin[] = [];

  constructor(private readonly logger: Logger) {}

  async loadDirectory(dir: string): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith('.wasm')).sort();
    } catch (err) {
      throw new PluginError('MELTEMI_PLUGIN_NOT_FOUND', dir, `cannot read plugin directory: ${(err as Error).message}`);
    }
    for (const name of names) await this.loadFile(join(dir, name));
  }

  async loadFile(file: string): Promise<CodecPlugin | undefined> {
    try {
      const compiled = await loadPluginFile(file, this.logger);
      const plugin = new CodecPlugin(compiled, this.logger);
      const protocol = compiled.descriptor.protocol;
      const existing = this.byProtocol.get(protocol);
      if (existing && existing.compiled.file !== file) {
        throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `protocol "${protocol}" is already provided by ${existing.compiled.file}`);
      }
      this.byProtocol.set(protocol, plugin);
      this.logger.log('info', `loaded codec ${compiled.descriptor.name} for protocol ${protocol}`, { file, sha256: compiled.sha256.slice(0, 12) });
      return plugin;
    } catch (err) {
      const e = err as PluginError;
      this.rejected.push({ file, code: e.code ?? 'MELTEMI_PLUGIN_INVALID', reason: e.message });
      this.logger.log('error', `rejected plugin ${file}`, { code: e.code, reason: e.message });
      return undefined;
    }
  }

  codec(protocol: string): CodecPlugin | undefined {
    return this.byProtocol.get(protocol);
  }

  codecs(): CodecPlugin[] {
    return [...this.byProtocol.values()];
  }
}
