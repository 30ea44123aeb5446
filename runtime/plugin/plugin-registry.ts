// Loads the .wasm files of the plugin directory and keeps, per protocol, the current generation
// of its codec, and per name the current generation of each filter. A reload compiles only files whose bytes changed; a new build is validated, runs
// a self-test in a canary instance (all in the compiler worker, off the event loop), and only
// then becomes current. A rejected build is logged with its file and reason and counted, and
// the previous generation keeps serving. A removed file leaves its last generation in use.

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { PluginsConfig } from '../config/types';
import { CodecPlugin } from '../codec/codec-plugin';
import { FilterPlugin } from '../filter/filter-plugin';
import { PluginMetrics } from '../filter/plugin-metrics';
import type { AcceptResult } from './plugin-accept';
import type { PluginDescriptor } from './plugin-descriptor';
import { PluginCompiler, sharedPluginCompiler } from './plugin-compiler';

/** A current plugin as the primary hands it to worker threads (structured-cloneable). */
export interface PluginSnapshotEntry {
  readonly file: string;
  readonly sha256: string;
  readonly module: WebAssembly.Module;
  readonly descriptor: PluginDescriptor;
  readonly removed: boolean;
  readonly generation: number;
}

export interface RejectedPlugin {
  readonly file: string;
  readonly code: string;
  readonly reason: string;
  readonly at: string;
}

const MAX_REJECTIONS_KEPT = 50;

/** The `plugins` section of the config (defaults are validate.ts's). */
export type PluginOptions = Pick<PluginsConfig, 'maxMemoryBytes' | 'fuelPerCall' | 'maxFileBytes' | 'loadTimeoutMs'>;

export class PluginRegistry {
  private readonly byProtocol = new Map<string, CodecPlugin>();
  private readonly byFilterName = new Map<string, FilterPlugin>();
  private readonly fileSha = new Map<string, string>();
  /** Files rejected before their bytes were hashed (timeouts, FIFOs): their stat signature. */
  private readonly unreadable = new Map<string, string>();
  /** Every generation still in use by a connection, plus the current ones. */
  private readonly live = new Set<CodecPlugin>();
  private nextGeneration = 1;
  /** The most recent rejections (a file rewritten broken again and again must not grow this). */
  readonly rejected: RejectedPlugin[] = [];
  rejectedTotal = 0;
  reloads = 0;
  /** Metrics plugins define (meltemi.metric_define), exported on /metrics. */
  readonly metrics = new PluginMetrics();
  /** Called when a filter gets a new current generation. */
  onFilterSwap: ((name: string, plugin: FilterPlugin) => void) | undefined;
  /** Called when a protocol gets a new current generation. */
  onSwap: ((protocol: string, plugin: CodecPlugin) => void) | undefined;

  constructor(private readonly logger: Logger, private readonly opts: PluginOptions,
    private readonly compiler: PluginCompiler = sharedPluginCompiler()) {}

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
    for (const file of [...this.unreadable.keys()]) if (!present.has(file)) this.unreadable.delete(file);
    this.markRemoved(present);
  }

  /** Generations whose file is not in `present` stay in use, marked removed. */
  private markRemoved(present: ReadonlySet<string>): void {
    for (const [file] of this.fileSha) {
      if (present.has(file)) continue;
      this.fileSha.delete(file);
      for (const p of [...this.byProtocol.values(), ...this.byFilterName.values()]) {
        if (p.compiled.file === file && !p.removed) {
          p.removed = true;
          this.logger.log('warn', `plugin file ${file} was removed; listeners keep generation ${p.generation} of ${p.name}`);
        }
      }
    }
  }

  async loadFile(file: string): Promise<CodecPlugin | undefined> {
    const opts = this.opts;
    const sig = this.unreadable.has(file) ? await statSignature(file) : undefined;
    if (sig && this.unreadable.get(file) === sig) return undefined;
    this.unreadable.delete(file);
    let result: AcceptResult;
    try {
      const { maxFileBytes, maxMemoryBytes, fuelPerCall } = opts;
      result = await this.compiler.accept(file, { maxFileBytes, maxMemoryBytes, fuelPerCall, knownSha256: this.fileSha.get(file) }, opts.loadTimeoutMs);
    } catch (err) {
      const e = err as PluginError;
      // A broken build is rejected once, not on every reload, until its bytes change (or, for
      // one whose bytes were never hashed, until its size or mtime does).
      if (e.sha256) {
        if (this.fileSha.get(file) === e.sha256) return undefined;
        this.fileSha.set(file, e.sha256);
      } else {
        const sig = await statSignature(file);
        if (sig && this.unreadable.get(file) === sig) return undefined;
        if (sig) this.unreadable.set(file, sig);
      }
      this.reject(file, e);
      return undefined;
    }
    if (result.unchanged) return undefined;
    return this.install(file, result);
  }

  /** The current plugins, as a worker thread takes them (see adopt). */
  snapshot(): PluginSnapshotEntry[] {
    return [...this.byProtocol.values(), ...this.byFilterName.values()].map((p) => ({
      file: p.compiled.file, sha256: p.compiled.sha256, module: p.compiled.module, descriptor: p.compiled.descriptor, removed: p.removed, generation: p.generation,
    }));
  }

  /**
   * Instantiates every plugin of `entries` this registry does not run yet, keeping none: a
   * worker's check that it can take a generation before any worker does. Throws the first failure.
   */
  check(entries: readonly PluginSnapshotEntry[]): void {
    for (const e of entries) {
      if (this.fileSha.get(e.file) === e.sha256 || this.runs(e)) continue;
      const compiled = { file: e.file, sha256: e.sha256, module: e.module, descriptor: e.descriptor, loadedAt: new Date() };
      if (e.descriptor.kind === 'filter') new FilterPlugin(compiled, this.logger, 0, this.opts.maxMemoryBytes, this.opts.fuelPerCall, new PluginMetrics());
      else new CodecPlugin(compiled, this.logger, 0, this.opts.maxMemoryBytes, this.opts.fuelPerCall);
    }
  }

  /**
   * Makes the primary's current plugins this registry's (worker threads): new and changed ones
   * are installed as a reload would (the primary accepted them; their modules are shared, not
   * compiled again), the others stay, and generations the primary no longer runs are marked removed.
   */
  adopt(entries: readonly PluginSnapshotEntry[]): void {
    for (const e of entries) {
      if (this.fileSha.get(e.file) === e.sha256 || this.runs(e)) continue;
      this.install(e.file, { unchanged: false, sha256: e.sha256, module: e.module, descriptor: e.descriptor, guestLog: [] }, e);
    }
    this.markRemoved(new Set(entries.filter((e) => !e.removed).map((e) => e.file)));
  }

  /** `given`: the primary's entry a worker installs (its generation number is kept; logged at debug). */
  /** Whether `e` is current here already (a removed file's generation stays current, its hash forgotten). */
  private runs(e: PluginSnapshotEntry): boolean {
    const p = e.descriptor.kind === 'filter' ? this.byFilterName.get(e.descriptor.name) : this.byProtocol.get(e.descriptor.protocol);
    return p !== undefined && p.compiled.file === e.file && p.compiled.sha256 === e.sha256 && p.generation === e.generation;
  }

  private install(file: string, result: AcceptResult & { unchanged: false }, given?: PluginSnapshotEntry): CodecPlugin | undefined {
    const opts = this.opts;
    // The file held a filter that its new build no longer is (a codec now, or another name):
    // that filter's name is free again; listeners keep the chains they have.
    for (const [name, f] of this.byFilterName) {
      if (f.compiled.file === file && (result.descriptor.kind !== 'filter' || result.descriptor.name !== name)) {
        f.removed = true;
        this.byFilterName.delete(name);
        this.logger.log('warn', `plugin file ${file} no longer holds filter ${name}; listeners keep generation ${f.generation}`);
      }
    }
    const sha = result.sha256;
    this.fileSha.set(file, sha);
    for (const line of result.guestLog) this.logger.log(line.level, line.message, { plugin: file, canary: true });
    if (result.descriptor.kind === 'filter') return this.addFilter(file, sha, result, given);
    try {
      const protocol = result.descriptor.protocol;
      const existing = this.byProtocol.get(protocol);
      if (existing && existing.compiled.file !== file && !existing.removed) {
        throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `protocol "${protocol}" is already provided by ${existing.compiled.file}`);
      }
      // Trusted now: the canary ran this exact module through every call, metered, off the loop.
      const compiled = { file, sha256: sha, module: result.module, descriptor: result.descriptor, loadedAt: new Date() };
      const plugin = new CodecPlugin(compiled, this.logger, given?.generation ?? this.nextGeneration++, opts.maxMemoryBytes, opts.fuelPerCall);
      this.byProtocol.set(protocol, plugin);
      this.live.add(plugin);
      if (existing) {
        this.reloads++;
        plugin.reloads = existing.reloads + 1;
        this.forgetIfIdle(existing);
      }
      this.logger.log(given ? 'debug' : 'info', `loaded codec ${compiled.descriptor.name} generation ${plugin.generation} for protocol ${protocol}`, { file, sha256: sha.slice(0, 12) });
      if (existing) this.onSwap?.(protocol, plugin);
      return plugin;
    } catch (err) {
      this.reject(file, err as PluginError);
      return undefined;
    }
  }

  private addFilter(file: string, sha: string, result: AcceptResult & { unchanged: false }, given?: PluginSnapshotEntry): undefined {
    const name = result.descriptor.name;
    const existing = this.byFilterName.get(name);
    if (existing && existing.compiled.file !== file && !existing.removed) {
      this.reject(file, new PluginError('MELTEMI_PLUGIN_INVALID', file, `filter "${name}" is already provided by ${existing.compiled.file}`));
      return undefined;
    }
    const compiled = { file, sha256: sha, module: result.module, descriptor: result.descriptor, loadedAt: new Date() };
    const plugin = new FilterPlugin(compiled, this.logger, given?.generation ?? this.nextGeneration++, this.opts.maxMemoryBytes, this.opts.fuelPerCall, this.metrics);
    this.byFilterName.set(name, plugin);
    if (existing) {
      this.reloads++;
      plugin.reloads = existing.reloads + 1;
    }
    this.logger.log(given ? 'debug' : 'info', `loaded filter ${name} generation ${plugin.generation}`, { file, sha256: sha.slice(0, 12) });
    if (existing) this.onFilterSwap?.(name, plugin);
    return undefined;
  }

  filter(name: string): FilterPlugin | undefined {
    return this.byFilterName.get(name);
  }

  filters(): FilterPlugin[] {
    return [...this.byFilterName.values()];
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

async function statSignature(file: string): Promise<string | undefined> {
  try {
    const st = await stat(file);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.mode}`;
  } catch {
    return undefined;
  }
}
