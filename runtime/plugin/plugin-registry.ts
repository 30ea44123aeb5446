// Loads the .wasm files of the plugin directory and keeps, per protocol, the current generation
// of its codec. A reload compiles only files whose bytes changed; a new build is validated, runs
// a self-test in a canary instance, and only then becomes current. A rejected build is logged
// with its file and reason and counted, and the previous generation keeps serving. A removed
// file leaves its last generation in use (marked removed).

import { readdir, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { PluginError } from '../core/errors';
import type { Logger } from '../core/logger';
import { ErrorKind } from './abi';
import { CodecPlugin } from './codec-plugin';
import { compilePlugin } from './plugin-loader';
import { meterModule } from './fuel-metering';

export interface RejectedPlugin {
  readonly file: string;
  readonly code: string;
  readonly reason: string;
  readonly at: string;
}

const MAX_REJECTIONS_KEPT = 50;

export interface PluginOptions {
  /** Guest memory above which an instance is treated as faulty and replaced. */
  readonly maxMemoryBytes?: number;
  /** Loop iterations and calls one ABI call may make (0: no metering). */
  readonly fuelPerCall?: number;
}

export class PluginRegistry {
  private readonly byProtocol = new Map<string, CodecPlugin>();
  private readonly fileSha = new Map<string, string>();
  /** Every generation still in use by a connection, plus the current ones. */
  private readonly live = new Set<CodecPlugin>();
  private nextGeneration = 1;
  /** The most recent rejections (a file rewritten broken again and again must not grow this). */
  readonly rejected: RejectedPlugin[] = [];
  rejectedTotal = 0;
  reloads = 0;
  /** Called when a protocol gets a new current generation. */
  onSwap: ((protocol: string, plugin: CodecPlugin) => void) | undefined;

  constructor(private readonly logger: Logger, private readonly opts: PluginOptions = {}) {}

  /** Loads every plugin file at start; a directory that cannot be read is an error. */
  async loadDirectory(dir: string): Promise<void> {
    try {
      await readdir(dir);
    } catch (err) {
      throw new PluginError('MELTEMI_PLUGIN_NOT_FOUND', dir, `cannot read plugin directory: ${(err as Error).message}`);
    }
    await this.reload(dir);
  }

  /** Re-reads the directory: new and changed files are loaded, removed ones are marked. */
  async reload(dir: string): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.endsWith('.wasm')).sort();
    } catch (err) {
      this.logger.log('error', `cannot read plugin directory ${dir}: ${(err as Error).message}`);
      return;
    }
    const present = new Set(names.map((n) => join(dir, n)));
    for (const file of present) await this.loadFile(file);
    for (const [file] of this.fileSha) {
      if (present.has(file)) continue;
      this.fileSha.delete(file);
      for (const p of this.byProtocol.values()) {
        if (p.compiled.file === file && !p.removed) {
          p.removed = true;
          this.logger.log('warn', `plugin file ${file} was removed; listeners keep generation ${p.generation} of ${p.name}`);
        }
      }
    }
  }

  async loadFile(file: string): Promise<CodecPlugin | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      this.reject(file, new PluginError('MELTEMI_PLUGIN_NOT_FOUND', file, `cannot read: ${(err as Error).message}`));
      return undefined;
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (this.fileSha.get(file) === sha) return undefined;
    this.fileSha.set(file, sha);
    try {
      const fuel = this.opts.fuelPerCall ?? 0;
      // The plugin's own bytes go through every loader rule first, so rejections name its
      // items; then the metered module (what actually runs) is compiled. sha256 is the file's.
      let compiled = compilePlugin(file, bytes, this.logger);
      if (fuel > 0) {
        let metered: Uint8Array;
        try {
          metered = await meterModule(bytes);
        } catch (err) {
          throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `cannot add fuel metering: ${(err as Error).message}`, { cause: err });
        }
        compiled = { ...compilePlugin(file, metered, this.logger), sha256: sha };
      }
      const plugin = new CodecPlugin(compiled, this.logger, this.nextGeneration, this.opts.maxMemoryBytes, fuel);
      selfTest(plugin);
      const protocol = compiled.descriptor.protocol;
      const existing = this.byProtocol.get(protocol);
      if (existing && existing.compiled.file !== file && !existing.removed) {
        throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `protocol "${protocol}" is already provided by ${existing.compiled.file}`);
      }
      this.nextGeneration++;
      this.byProtocol.set(protocol, plugin);
      this.live.add(plugin);
      if (existing) {
        this.reloads++;
        plugin.reloads = existing.reloads + 1;
        this.forgetIfIdle(existing);
      }
      this.logger.log('info', `loaded codec ${compiled.descriptor.name} generation ${plugin.generation} for protocol ${protocol}`, { file, sha256: sha.slice(0, 12) });
      if (existing) this.onSwap?.(protocol, plugin);
      return plugin;
    } catch (err) {
      this.reject(file, err as PluginError);
      return undefined;
    }
  }

  private reject(file: string, err: PluginError): void {
    this.rejectedTotal++;
    this.rejected.push({ file, code: err.code ?? 'MELTEMI_PLUGIN_INVALID', reason: err.message, at: new Date().toISOString() });
    if (this.rejected.length > MAX_REJECTIONS_KEPT) this.rejected.shift();
    this.logger.log('error', `rejected plugin ${file}; the previous generation keeps serving`, { code: err.code, reason: err.message });
  }

  /** Drops a superseded generation once no connection uses it. */
  forgetIfIdle(plugin: CodecPlugin): void {
    if (this.byProtocol.get(plugin.descriptor.protocol) !== plugin && plugin.connections === 0) this.live.delete(plugin);
  }

  codec(protocol: string): CodecPlugin | undefined {
    return this.byProtocol.get(protocol);
  }

  /** Current generations. */
  codecs(): CodecPlugin[] {
    return [...this.byProtocol.values()];
  }

  /** Current generations and older ones still in use. */
  generations(): CodecPlugin[] {
    return [...this.live];
  }
}

/** A build must survive the calls every connection makes before it replaces a working one. */
function selfTest(plugin: CodecPlugin): void {
  for (const upstream of [false, true]) {
    const ctx = plugin.open(upstream, Buffer.alloc(0));
    try {
      ctx.decode(Buffer.alloc(0), upstream ? 1 : 0);
      ctx.localReply(null, ErrorKind.PROTOCOL_ERROR, 'meltemi self-test');
    } catch (err) {
      throw new PluginError('MELTEMI_PLUGIN_INVALID', plugin.compiled.file, `self-test failed: ${(err as Error).message}`, { cause: err });
    } finally {
      ctx.close();
    }
  }
}
