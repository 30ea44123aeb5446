// A loaded codec plugin: one compiled module, the instance all connections of this thread share,
// and per-connection contexts that follow the instance when a trap forces a replacement.

import type { Logger } from '../core/logger';
import { isMeltemiError, PluginError } from '../core/errors';
import { CodecInstance, DecodeResult, SessionState } from './codec-instance';
import type { CompiledPlugin } from '../plugin/plugin-loader';
import type { ErrorKindValue, MessageTypeValue } from '../wasm/abi';

/** Why a request-id codec whose encode ignores SET_REQUEST_ID is refused. */
export const ID_NOT_REWRITTEN = 'the codec declares request_id correlation but its encode returned UNCHANGED for a SET_REQUEST_ID mutation: override Codec.encode and write the new id (mutation.requestId) into the frame';

export class CodecPlugin {
  instance: CodecInstance;
  traps = 0;
  recycles = 0;
  activeContexts = 0;
  /** Downstream connections pinned to this generation. */
  connections = 0;
  /** How many generations of this plugin came before this one (reloads so far). */
  reloads = 0;
  /** The file was deleted; this generation stays in use. */
  removed = false;
  private nextContextId = 1;

  constructor(readonly compiled: CompiledPlugin, private readonly logger: Logger, readonly generation = 1,
    private readonly maxMemoryBytes?: number, private readonly fuelPerCall = 0) {
    this.instance = new CodecInstance(compiled.module, compiled.file, logger, maxMemoryBytes, fuelPerCall);
  }

  get name(): string {
    return this.compiled.descriptor.name;
  }

  get descriptor() {
    return this.compiled.descriptor;
  }

  /** Opens a context for one connection; `upstream` when it decodes responses. */
  open(upstream: boolean, config: Buffer): CodecContext {
    return new CodecContext(this, this.nextContextId++, upstream, config);
  }

  /** Called after a trap: the poisoned instance is dropped and a fresh one takes its place. */
  replaceInstance(cause: unknown): void {
    this.traps++;
    if (!this.instance.poisoned) return;
    this.logger.log('warn', `plugin ${this.name} trapped; replacing its instance`, { error: (cause as Error)?.message });
    this.instance = new CodecInstance(this.compiled.module, this.compiled.file, this.logger, this.maxMemoryBytes, this.fuelPerCall);
    this.recycles++;
  }
}

export class CodecContext {
  private bound: CodecInstance | undefined;
  private closed = false;
  /** ABI 1.2: the bound session this context is a side of (shared with the other side's context). */
  session: SessionState | undefined;

  constructor(
    readonly plugin: CodecPlugin,
    readonly id: number,
    private readonly upstream: boolean,
    private readonly config: Buffer,
  ) {
    plugin.activeContexts++;
  }

  /** The plugin's current instance, with this context created in it (again, after a trap). */
  private instance(): CodecInstance {
    const current = this.plugin.instance;
    if (this.bound !== current) {
      current.contextNew(this.id, this.upstream, this.config);
      this.bound = current;
    }
    return current;
  }

  /** Creates the context in the plugin now (contexts are created at their first call): a codec that refuses its config says so here. */
  create(): this {
    this.guard(() => undefined);
    return this;
  }

  private guard<T>(fn: (inst: CodecInstance) => T): T {
    try {
      return fn(this.instance());
    } catch (err) {
      if (isMeltemiError(err, 'MELTEMI_PLUGIN_TRAP') || isMeltemiError(err, 'MELTEMI_ABI_VIOLATION')) {
        this.bound = undefined;
        this.plugin.replaceInstance(err);
      }
      throw err;
    }
  }

  decode(input: Buffer, flags: number): DecodeResult {
    return this.guard((inst) => inst.decode(this.id, input, flags, this.session));
  }

  /**
   * Encodes `frame` with `mutation`; null when the codec forwards it unchanged. `rewritesId`: the
   * mutation sets a request id other than the frame's (the host renumbering for request-id
   * correlation), so "unchanged" would send a colliding id upstream or a foreign id back to the
   * client — a silent timeout. That is an ABI violation, reported with what the codec must do.
   */
  encode(frame: Buffer, mutation: Buffer, messageType: MessageTypeValue, upstream: boolean, rewritesId = false): Buffer | null {
    const out = this.guard((inst) => inst.encode(this.id, frame, mutation, messageType, upstream, this.session));
    if (out === null && rewritesId) {
      throw new PluginError('MELTEMI_ABI_VIOLATION', this.plugin.compiled.file, `${ID_NOT_REWRITTEN} (${upstream ? 'a response' : 'a request'} of ${frame.length} bytes)`);
    }
    return out;
  }

  localReply(request: Buffer | null, kind: ErrorKindValue, message: string): Buffer {
    return this.guard((inst) => inst.localReply(this.id, request, kind, message, this.session));
  }

  /** ABI 1.2 (bound sessions): see CodecInstance.rebind. */
  rebind(greeting: Buffer, login: Buffer, answer: Buffer | null): Buffer | null {
    const session = this.session ??= new SessionState();
    return this.guard((inst) => inst.rebind(this.id, greeting, login, answer, session));
  }

  heartbeatReply(frame: Buffer): Buffer | null {
    return this.guard((inst) => inst.heartbeatReply(this.id, frame, this.session));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.plugin.activeContexts--;
    if (this.bound === this.plugin.instance) {
      try {
        this.bound.contextFree(this.id);
      } catch {
        // A trap while freeing poisons the instance; the next call replaces it.
      }
    }
    this.bound = undefined;
  }
}
