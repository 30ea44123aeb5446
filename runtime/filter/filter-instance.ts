// The host side of every filter ABI call (ABI-1.1.md §2) on one instantiated filter module. A
// root context is one configured use of the filter (a listener's filters entry); requests are
// numbered by the host. Results are decoded here into plain values, copied out of guest memory.

import type { Logger } from '../core/logger';
import { Ctrl, FilterAction, Status } from '../wasm/abi';
import type { PluginHost } from '../wasm/host-imports';
import { BaseExports, WasmInstance } from '../wasm/wasm-instance';
import { parseDescriptor, PluginDescriptor } from '../plugin/plugin-descriptor';

interface FilterExports extends BaseExports {
  meltemi_root_new: (root: number, cfgLen: number) => number;
  meltemi_root_free: (root: number) => number;
  meltemi_on_request: (root: number, req: number, recLen: number) => number;
  meltemi_on_response: (root: number, req: number, recLen: number) => number;
  meltemi_on_timer: (root: number, req: number, timer: number) => number;
  meltemi_on_done: (root: number, req: number) => number;
}

/** A filter's answer: the action, and for CONTINUE a mutation, for LOCAL_REPLY the reply. */
export interface FilterResult {
  readonly action: number;
  /** Encoded mutation buffer (ABI.md §6.2), when the filter wrote one. */
  readonly mutation: Buffer | null;
  readonly replyKind: number;
  readonly replyMessage: string;
}

/** A local reply's message is cut to this many bytes; a mutation buffer may not exceed the other. */
const MAX_REPLY_MESSAGE = 4096;
const MAX_MUTATION_BYTES = 64 * 1024;

const CONTINUE: FilterResult = { action: FilterAction.CONTINUE, mutation: null, replyKind: 0, replyMessage: '' };

export class FilterInstance {
  readonly descriptor: PluginDescriptor;
  private readonly wasm: WasmInstance<FilterExports>;
  private readonly ex: FilterExports;

  constructor(module: WebAssembly.Module, readonly file: string, logger: Logger, maxMemoryBytes = Number.POSITIVE_INFINITY, fuelPerCall = 0, host?: PluginHost) {
    this.wasm = new WasmInstance<FilterExports>(module, file, logger, maxMemoryBytes, fuelPerCall, host);
    this.ex = this.wasm.ex;
    this.descriptor = parseDescriptor(file, this.wasm.info);
  }

  get poisoned(): boolean {
    return this.wasm.poisoned;
  }

  /** Configures a root; returns the filter's reason when it refuses the config. */
  rootNew(root: number, config: Buffer): string | undefined {
    this.wasm.writeIn(config, 0);
    const status = this.wasm.call(() => this.ex.meltemi_root_new(root, config.length));
    if (status === Status.OK) return undefined;
    return this.wasm.errorText() ?? `meltemi_root_new returned ${status}`;
  }

  rootFree(root: number): void {
    if (this.wasm.poisoned) return;
    this.wasm.call(() => this.ex.meltemi_root_free(root));
  }

  onRequest(root: number, req: number, record: Buffer): FilterResult {
    this.wasm.writeIn(record, 0);
    return this.result('meltemi_on_request', this.wasm.invoke(this.ex.meltemi_on_request, root, req, record.length));
  }

  onResponse(root: number, req: number, record: Buffer): FilterResult {
    this.wasm.writeIn(record, 0);
    return this.result('meltemi_on_response', this.wasm.invoke(this.ex.meltemi_on_response, root, req, record.length));
  }

  onTimer(root: number, req: number, timer: number): FilterResult {
    return this.result('meltemi_on_timer', this.wasm.call(() => this.ex.meltemi_on_timer(root, req, timer)));
  }

  onDone(root: number, req: number): void {
    if (this.wasm.poisoned) return;
    this.wasm.call(() => this.ex.meltemi_on_done(root, req));
  }

  private result(call: string, action: number): FilterResult {
    // The common case, continue with nothing in OUT, reads one control field and allocates nothing.
    if (action === FilterAction.CONTINUE && this.wasm.ctrlField(Ctrl.OUT_LEN) === 0) return CONTINUE;
    if (action < 0) throw this.wasm.statusError(call, action);
    if (action > FilterAction.ABORT) throw this.wasm.violation(`${call} returned action ${action}`);
    const out = this.wasm.outBytes();
    if (action === FilterAction.LOCAL_REPLY) {
      if (out.length < 4) throw this.wasm.violation(`${call}: a local reply needs an error kind in OUT`);
      const kind = Buffer.from(out.buffer, out.byteOffset, 4).readUInt32LE(0);
      // The message goes into an error frame: bounded before it is copied out of the guest.
      const message = Buffer.from(out.subarray(4, 4 + Math.min(out.length - 4, MAX_REPLY_MESSAGE))).toString('utf8');
      return { action, mutation: null, replyKind: kind, replyMessage: message };
    }
    if (action === FilterAction.CONTINUE && out.length === 0) return CONTINUE;
    if (out.length > MAX_MUTATION_BYTES) throw this.wasm.violation(`${call}: a mutation of ${out.length} bytes (at most ${MAX_MUTATION_BYTES})`);
    return { action, mutation: action === FilterAction.CONTINUE ? Buffer.from(out) : null, replyKind: 0, replyMessage: '' };
  }
}
