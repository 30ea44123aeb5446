// One instantiated plugin module and what every ABI call needs, whatever the plugin kind
// (sdk/ABI.md §3): the control block, the IN and OUT regions with bounds checks, fuel per call,
// the memory cap, traps turned into PluginErrors, and the host imports (log, abort, and ABI 1.1's
// clock, timers and metrics). Codec and filter calls are layered on top (codec/, filter/).

import { PluginError } from '../core/errors';
import type { Logger } from '../core/logger';
import { Ctrl, Layout, Status } from './abi';
import { FUEL_EXPORT } from './fuel-metering';
import { LogRateLimiter } from './log-rate-limiter';
import { hostImports, PluginHost } from './host-imports';

/** The exports every plugin has (ABI.md §3). */
export interface BaseExports {
  memory: WebAssembly.Memory;
  _initialize?: () => void;
  meltemi_ctrl: () => number;
  meltemi_info: () => number;
  meltemi_in_reserve: (cap: number) => number;
}

export class WasmInstance<E extends BaseExports = BaseExports> {
  /** Set once a call trapped; the owner must replace the instance. */
  poisoned = false;
  readonly ex: E;
  u8: Uint8Array;
  i32: Int32Array;
  /** Address of the control block. */
  readonly ctrl: number;
  private lastAbort: string | undefined;
  private readonly fuel: WebAssembly.Global | undefined;
  private readonly logLimiter = new LogRateLimiter(100);
  /** The plugin's self-description (meltemi_info), as JSON text. */
  readonly info: string;

  constructor(
    readonly module: WebAssembly.Module,
    readonly file: string,
    private readonly logger: Logger,
    /** Guest memory above which the instance counts as faulty (replaced like after a trap). */
    private readonly maxMemoryBytes = Number.POSITIVE_INFINITY,
    /** Fuel (instructions) one ABI call may use, when the module is metered; the module itself refills it. */
    private fuelPerCall = 0,
    /** What timers and metrics act on (a filter's host); without it they are inert. */
    host?: PluginHost,
  ) {
    let self: WasmInstance<E> | undefined;
    const imports: Record<string, Record<string, unknown>> = {
      meltemi: {
        ...hostImports(() => self! as unknown as WasmInstance, host),
        log: (level: number, ptr: number, len: number) => self!.guestLog(level, ptr, len),
      },
      env: { abort: (msg: number, file: number, line: number, col: number) => self!.guestAbort(msg, file, line, col) },
    };
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(module, imports);
    } catch (err) {
      const metered = WebAssembly.Module.exports(module).some((e) => e.name === FUEL_EXPORT);
      const hint = metered && err instanceof WebAssembly.RuntimeError
        ? ' (a trap here comes from the module\'s start function; a metered one that runs past fuel_per_call traps as "unreachable")' : '';
      throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `instantiation failed: ${(err as Error).message}${hint}`, { cause: err });
    }
    self = this;
    this.ex = instance.exports as unknown as E;
    const fuel = (instance.exports as Record<string, unknown>)[FUEL_EXPORT];
    this.fuel = fuel instanceof WebAssembly.Global ? fuel : undefined;
    // A metered module run without a budget (the loader's canary) gets the largest one.
    if (this.fuel && this.fuelPerCall <= 0) this.fuelPerCall = 0x7fff_ffff;
    const memory = this.ex.memory;
    if (!(memory instanceof WebAssembly.Memory)) {
      throw new PluginError('MELTEMI_PLUGIN_INVALID', file, 'export "memory" is not a memory');
    }
    this.u8 = new Uint8Array(memory.buffer);
    this.i32 = new Int32Array(memory.buffer);
    try {
      this.ex._initialize?.();
    } catch (err) {
      const stuck = this.fuel && (this.fuel.value as number) <= 0 ? ` (exceeded its budget of ${this.fuelPerCall} instructions: stuck?)` : '';
      throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `_initialize trapped: ${this.trapMessage(err)}${stuck}`, { cause: err });
    }
    this.refresh();
    this.ctrl = this.call(() => this.ex.meltemi_ctrl());
    this.checkRange(this.ctrl, Layout.CTRL_SIZE, 'control block');
    if ((this.ctrl & 3) !== 0) throw this.violation('control block is not 4-byte aligned');
    const status = this.call(() => this.ex.meltemi_info());
    if (status !== Status.OK) throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `meltemi_info returned ${status}: ${this.errorText() ?? ''}`);
    this.info = Buffer.from(this.outBytes()).toString('utf8');
  }

  /** Parameter count of an exported function (undefined when absent). */
  exportArity(name: string): number | undefined {
    const fn = (this.ex as unknown as Record<string, unknown>)[name];
    return typeof fn === 'function' ? fn.length : undefined;
  }

  get memoryBytes(): number {
    return this.ex.memory.buffer.byteLength;
  }

  // ---- memory and bounds -----------------------------------------------------------------

  /** Re-creates the views when guest memory grew (growth detaches the old ArrayBuffer). */
  refresh(): void {
    // Growth detaches the old buffer (plugin memories are never shared: wasm-memory-limit.ts),
    // so an empty view is the whole test; reading memory.buffer on every call cost ~40 ns.
    if (this.u8.byteLength === 0) {
      this.u8 = new Uint8Array(this.ex.memory.buffer);
      this.i32 = new Int32Array(this.ex.memory.buffer);
      // Memory only changes size here (growth), so this is the one place to enforce the cap.
      if (this.u8.byteLength > this.maxMemoryBytes) {
        throw this.violation(`guest memory grew to ${this.u8.byteLength} bytes, over the ${this.maxMemoryBytes}-byte cap`);
      }
    }
  }

  ctrlField(offset: number): number {
    return this.i32[(this.ctrl + offset) >> 2] >>> 0;
  }

  checkRange(ptr: number, len: number, what: string): void {
    if (ptr < 0 || len < 0 || ptr + len > this.u8.length) {
      throw this.violation(`${what} [${ptr}, ${ptr + len}) is outside guest memory (${this.u8.length} bytes)`);
    }
  }

  /** Copies `bytes` into IN at offset `at`, growing IN through the guest when needed. */
  writeIn(bytes: Uint8Array, at: number): void {
    const end = at + bytes.length;
    let cap = this.ctrlField(Ctrl.IN_CAP);
    if (end > cap) {
      this.call(() => this.ex.meltemi_in_reserve(end));
      cap = this.ctrlField(Ctrl.IN_CAP);
      if (end > cap) throw this.violation(`meltemi_in_reserve(${end}) left IN at ${cap} bytes`);
    }
    const inPtr = this.ctrlField(Ctrl.IN_PTR);
    this.checkRange(inPtr, cap, 'IN');
    this.u8.set(bytes, inPtr + at);
  }

  /** What the guest wrote to OUT: a view, valid until the next call. */
  outBytes(): Uint8Array {
    const ptr = this.ctrlField(Ctrl.OUT_PTR);
    const len = this.ctrlField(Ctrl.OUT_LEN);
    this.checkRange(ptr, len, 'OUT');
    return this.u8.subarray(ptr, ptr + len);
  }

  errorText(): string | undefined {
    const len = this.ctrlField(Ctrl.ERR_LEN);
    if (len === 0) return undefined;
    const out = this.outBytes();
    const off = this.ctrlField(Ctrl.ERR_OFF);
    if (off + len > out.length) throw this.violation('error message outside OUT');
    return Buffer.from(out.buffer, out.byteOffset + off, len).toString('utf8');
  }

  // ---- calls and traps -------------------------------------------------------------------

  /** Runs one guest call (a metered export refills its own fuel first); a trap poisons the instance. */
  call(fn: () => number | void): number {
    return this.invoke(fn as (a: number, b: number, c: number) => number, 0, 0, 0);
  }

  /**
   * `fn(a, b, c)` as `call` runs it: the per-request calls pass their arguments here rather than
   * in a closure, which would be allocated on every call.
   */
  invoke(fn: (a: number, b: number, c: number) => number | void, a: number, b: number, c: number): number {
    if (this.poisoned) throw new PluginError('MELTEMI_PLUGIN_TRAP', this.file, 'instance is poisoned by an earlier trap');
    this.lastAbort = undefined;
    let result: number | void;
    try {
      result = fn(a, b, c);
    } catch (err) {
      this.poisoned = true;
      if (err instanceof PluginError) throw err;
      if (this.fuel && (this.fuel.value as number) <= 0) {
        throw new PluginError('MELTEMI_PLUGIN_TRAP', this.file, `trap: exceeded its budget of ${this.fuelPerCall} instructions in one call (stuck?)`, { cause: err });
      }
      // memory.grow past the rewritten maximum fails inside the guest, which then traps: say
      // how close to the cap the guest was, so an allocation failure reads as one.
      const why = Number.isFinite(this.maxMemoryBytes)
        ? ` (guest memory ${this.ex.memory.buffer.byteLength} of its ${this.maxMemoryBytes}-byte cap, plugins.max_memory)` : '';
      throw new PluginError('MELTEMI_PLUGIN_TRAP', this.file, `trap: ${this.trapMessage(err)}${why}`, { cause: err });
    }
    this.refresh();
    return (result as number) | 0;
  }

  violation(message: string): PluginError {
    this.poisoned = true;
    return new PluginError('MELTEMI_ABI_VIOLATION', this.file, message);
  }

  /** A call returned an error status: its message from OUT. */
  statusError(call: string, status: number): PluginError {
    return new PluginError('MELTEMI_CODEC_ERROR', this.file, `${call} returned ${status}: ${this.errorText() ?? 'no message'}`);
  }

  private trapMessage(err: unknown): string {
    return this.lastAbort ?? (err instanceof Error ? err.message : String(err));
  }

  private guestLog(level: number, ptr: number, len: number): void {
    this.refresh();
    if (ptr < 0 || len < 0 || ptr + len > this.u8.length) return;
    if (!this.logLimiter.take()) return;
    const text = Buffer.from(this.u8.buffer, ptr, len).toString('utf8');
    const name = (['trace', 'debug', 'info', 'warn', 'error'] as const)[Math.max(0, Math.min(4, level))];
    this.logger.log(name, text, { plugin: this.file });
  }

  private guestAbort(msg: number, file: number, line: number, col: number): never {
    this.refresh();
    const text = this.readAsString(msg) ?? 'abort';
    const where = this.readAsString(file);
    this.lastAbort = where ? `${text} at ${where}:${line}:${col}` : text;
    throw new Error(`abort: ${this.lastAbort}`);
  }

  /** Reads an AssemblyScript string (UTF-16, byte length at ptr-4) or returns undefined. */
  private readAsString(ptr: number): string | undefined {
    if (!ptr || ptr < 4 || ptr > this.u8.length) return undefined;
    const len = new DataView(this.u8.buffer).getUint32(ptr - 4, true);
    if (ptr + len > this.u8.length || len > 4096) return undefined;
    return Buffer.from(this.u8.buffer, ptr, len).toString('utf16le');
  }
}
