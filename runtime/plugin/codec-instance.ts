// One instantiated codec module and the host side of every ABI call (sdk/ABI.md §3-§4).
// The instance is shared by all connections of the thread; each connection owns a context id.
// Every call copies its input into IN, reads the control block, bounds-checks what the guest
// wrote, and copies out whatever must outlive the next call.

import { PluginError } from '../core/errors';
import type { Logger } from '../core/logger';
import { CallFlag, Ctrl, EntryFlag, ErrorKindValue, Layout, MessageTypeValue, Status, align8 } from './abi';
import { Metadata } from './metadata';
import { PluginDescriptor, parseDescriptor } from './plugin-descriptor';
import { LogRateLimiter } from './log-rate-limiter';
import { FUEL_EXPORT } from './fuel-metering';

type Exports = {
  memory: WebAssembly.Memory;
  _initialize?: () => void;
  meltemi_ctrl: () => number;
  meltemi_info: () => number;
  meltemi_in_reserve: (cap: number) => number;
  meltemi_context_new: (ctx: number, flags: number, cfgLen: number) => number;
  meltemi_context_free: (ctx: number) => number;
  meltemi_decode: (ctx: number, len: number, flags: number) => number;
  meltemi_encode: (ctx: number, frameLen: number, mutLen: number, flags: number) => number;
  meltemi_local_reply: (ctx: number, frameLen: number, kind: number, msgLen: number, flags: number) => number;
  meltemi_heartbeat_reply: (ctx: number, frameLen: number, flags: number) => number;
};

export interface DecodeResult {
  /** 0, or a negative status when the bytes at `consumed` are not a valid frame. */
  status: number;
  consumed: number;
  /** Total bytes the next frame needs, when the codec knows (0 otherwise). */
  need: number;
  frames: Metadata[];
  error: string | undefined;
}

export class CodecInstance {
  readonly descriptor: PluginDescriptor;
  /** Set once a call trapped; the owner must replace the instance. */
  poisoned = false;
  private readonly ex: Exports;
  private u8: Uint8Array;
  private i32: Int32Array;
  private readonly ctrl: number;
  private lastAbort: string | undefined;
  private readonly fuel: WebAssembly.Global | undefined;
  private readonly logLimiter = new LogRateLimiter(100);

  constructor(
    readonly module: WebAssembly.Module,
    readonly file: string,
    private readonly logger: Logger,
    /** Guest memory above which the instance counts as faulty (replaced like after a trap). */
    private readonly maxMemoryBytes = Number.POSITIVE_INFINITY,
    /** Loop iterations and calls one ABI call may make, when the module is metered. */
    private fuelPerCall = 0,
  ) {
    let self: CodecInstance | undefined;
    const imports = {
      meltemi: { log: (level: number, ptr: number, len: number) => self!.guestLog(level, ptr, len) },
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
    this.ex = instance.exports as unknown as Exports;
    const fuel = (instance.exports as Record<string, unknown>)[FUEL_EXPORT];
    this.fuel = fuel instanceof WebAssembly.Global ? fuel : undefined;
    // A metered module run without a budget (the loader's canary) gets the largest one.
    if (this.fuel && this.fuelPerCall <= 0) this.fuelPerCall = 0x7fff_ffff;
    if (this.fuel) this.fuel.value = this.fuelPerCall;
    const memory = this.ex.memory;
    if (!(memory instanceof WebAssembly.Memory)) {
      throw new PluginError('MELTEMI_PLUGIN_INVALID', file, 'export "memory" is not a memory');
    }
    this.u8 = new Uint8Array(memory.buffer);
    this.i32 = new Int32Array(memory.buffer);
    try {
      this.ex._initialize?.();
    } catch (err) {
      const stuck = this.fuel && (this.fuel.value as number) < 0 ? ` (exceeded its budget of ${this.fuelPerCall} loop iterations and calls: stuck in a loop?)` : '';
      throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `_initialize trapped: ${this.trapMessage(err)}${stuck}`, { cause: err });
    }
    this.refresh();
    this.ctrl = this.call(() => this.ex.meltemi_ctrl());
    this.checkRange(this.ctrl, Layout.CTRL_SIZE, 'control block');
    if ((this.ctrl & 3) !== 0) throw this.violation('control block is not 4-byte aligned');
    const status = this.call(() => this.ex.meltemi_info());
    if (status !== Status.OK) throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `meltemi_info returned ${status}: ${this.errorText() ?? ''}`);
    this.descriptor = parseDescriptor(file, Buffer.from(this.outBytes()).toString('utf8'));
  }

  // ---- ABI calls -------------------------------------------------------------------------

  contextNew(ctx: number, upstream: boolean, config: Buffer): void {
    this.writeIn(config, 0);
    const status = this.call(() => this.ex.meltemi_context_new(ctx, upstream ? CallFlag.SIDE_UPSTREAM : 0, config.length));
    if (status !== Status.OK) throw this.codecError('meltemi_context_new', status);
  }

  contextFree(ctx: number): void {
    if (this.poisoned) return;
    this.call(() => this.ex.meltemi_context_free(ctx));
  }

  decode(ctx: number, input: Buffer, flags: number): DecodeResult {
    this.writeIn(input, 0);
    const status = this.call(() => this.ex.meltemi_decode(ctx, input.length, flags));
    const i32 = this.i32;
    const c = this.ctrl >> 2;
    const consumed = i32[c + (Ctrl.CONSUMED >> 2)] >>> 0;
    const count = i32[c + (Ctrl.FRAME_COUNT >> 2)] >>> 0;
    const need = i32[c + (Ctrl.NEED >> 2)] >>> 0;
    if (consumed > input.length) throw this.violation(`decode consumed ${consumed} of ${input.length} bytes`);
    const frames = count > 0 ? this.readRecords(input, count, consumed) : [];
    const error = status < 0 ? this.errorText() ?? `status ${status}` : undefined;
    return { status: status < 0 ? status : 0, consumed, need, frames, error };
  }

  /** Encodes `frame` with `mutation`; returns null when the codec forwards the frame unchanged. */
  encode(ctx: number, frame: Buffer, mutation: Buffer, messageType: MessageTypeValue, upstream: boolean): Buffer | null {
    this.writeIn(frame, 0);
    const mutAt = align8(frame.length);
    this.writeIn(mutation, mutAt);
    const flags = messageType | (upstream ? CallFlag.ENCODE_SIDE_UPSTREAM : 0);
    const status = this.call(() => this.ex.meltemi_encode(ctx, frame.length, mutation.length, flags));
    if (status === Status.UNCHANGED) return null;
    if (status !== Status.OK) throw this.codecError('meltemi_encode', status);
    return Buffer.from(this.outBytes());
  }

  localReply(ctx: number, request: Buffer | null, kind: ErrorKindValue, message: string): Buffer {
    const frame = request ?? Buffer.alloc(0);
    const msg = Buffer.from(message, 'utf8');
    this.writeIn(frame, 0);
    this.writeIn(msg, align8(frame.length));
    const status = this.call(() => this.ex.meltemi_local_reply(ctx, frame.length, kind, msg.length, 0));
    if (status !== Status.OK) throw this.codecError('meltemi_local_reply', status);
    return Buffer.from(this.outBytes());
  }

  /** The reply to a heartbeat, or null when the protocol has none. */
  heartbeatReply(ctx: number, frame: Buffer): Buffer | null {
    this.writeIn(frame, 0);
    const status = this.call(() => this.ex.meltemi_heartbeat_reply(ctx, frame.length, 0));
    if (status === Status.UNSUPPORTED) return null;
    if (status !== Status.OK) throw this.codecError('meltemi_heartbeat_reply', status);
    return Buffer.from(this.outBytes());
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
  private refresh(): void {
    if (this.u8.byteLength === 0 || this.u8.buffer !== this.ex.memory.buffer) {
      this.u8 = new Uint8Array(this.ex.memory.buffer);
      this.i32 = new Int32Array(this.ex.memory.buffer);
      // Memory only changes size here (growth), so this is the one place to enforce the cap.
      if (this.u8.byteLength > this.maxMemoryBytes) {
        throw this.violation(`guest memory grew to ${this.u8.byteLength} bytes, over the ${this.maxMemoryBytes}-byte cap`);
      }
    }
  }

  private ctrlField(offset: number): number {
    return this.i32[(this.ctrl + offset) >> 2] >>> 0;
  }

  private checkRange(ptr: number, len: number, what: string): void {
    if (ptr < 0 || len < 0 || ptr + len > this.u8.length) {
      throw this.violation(`${what} [${ptr}, ${ptr + len}) is outside guest memory (${this.u8.length} bytes)`);
    }
  }

  private writeIn(bytes: Uint8Array, at: number): void {
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

  private outBytes(): Uint8Array {
    const ptr = this.ctrlField(Ctrl.OUT_PTR);
    const len = this.ctrlField(Ctrl.OUT_LEN);
    this.checkRange(ptr, len, 'OUT');
    return this.u8.subarray(ptr, ptr + len);
  }

  private errorText(): string | undefined {
    const len = this.ctrlField(Ctrl.ERR_LEN);
    if (len === 0) return undefined;
    const out = this.outBytes();
    const off = this.ctrlField(Ctrl.ERR_OFF);
    if (off + len > out.length) throw this.violation('error message outside OUT');
    return Buffer.from(out.buffer, out.byteOffset + off, len).toString('utf8');
  }

  private readRecords(input: Buffer, count: number, consumed: number): Metadata[] {
    const out = this.outBytes();
    if ((out.byteOffset & 7) !== 0) throw this.violation('OUT is not 8-byte aligned');
    // One copy of the batch serves every frame in it: entries and inline bytes outlive this call.
    const copy = new ArrayBuffer((out.length + 3) & ~3);
    new Uint8Array(copy).set(out);
    const ints = new Int32Array(copy);
    const bytes = Buffer.from(copy);
    const frames = new Array<Metadata>(count);
    let at = 0;
    let expectedOff = 0;
    for (let n = 0; n < count; n++) {
      if (at + Layout.RECORD_HEADER_SIZE > out.length) throw this.violation('metadata record outside OUT');
      const r = at >> 2;
      const recordLen = ints[r] >>> 0;
      const frameOff = ints[r + 1] >>> 0;
      const frameLen = ints[r + 2] >>> 0;
      const word3 = ints[r + 3];
      const entryCount = ints[r + 8] >>> 0;
      if (entryCount > (out.length - at) / Layout.ENTRY_SIZE || recordLen < Layout.RECORD_HEADER_SIZE + entryCount * Layout.ENTRY_SIZE
        || (recordLen & 7) !== 0 || at + recordLen > out.length) {
        throw this.violation(`metadata record ${n} has a bad length ${recordLen}`);
      }
      if (frameOff !== expectedOff || frameOff + frameLen > consumed) {
        throw this.violation(`metadata record ${n} frame [${frameOff}, +${frameLen}) does not follow the previous frame`);
      }
      expectedOff = frameOff + frameLen;
      const entBase = r + 10;
      for (let e = entBase, end = entBase + entryCount * 5; e < end; e += 5) {
        const flags = ints[e] >>> 16;
        // References into IN must stay inside the input; inline ones inside their record.
        if (!checkRef(ints[e + 1], ints[e + 2], flags & EntryFlag.INLINE_KEY ? recordLen : input.length)
          || !checkRef(ints[e + 3], ints[e + 4], flags & EntryFlag.INLINE_VALUE ? recordLen : input.length)) {
          throw this.violation(`metadata record ${n} entry ${(e - entBase) / 5} points outside its buffer`);
        }
      }
      frames[n] = new Metadata(
        (word3 & 0xff) as MessageTypeValue, (word3 >>> 8) & 0xff, (word3 >>> 16) & 0xffff,
        ints[r + 4] >>> 0, ints[r + 5] >>> 0, ints[r + 6] >>> 0, ints[r + 7] >>> 0,
        input.subarray(frameOff, frameOff + frameLen), input, bytes, ints, entBase, entryCount, at,
      );
      at += recordLen;
    }
    if (expectedOff !== consumed) throw this.violation(`frames cover ${expectedOff} bytes but decode consumed ${consumed}`);
    return frames;
  }

  // ---- traps, imports --------------------------------------------------------------------

  private call(fn: () => number | void): number {
    if (this.poisoned) throw new PluginError('MELTEMI_PLUGIN_TRAP', this.file, 'instance is poisoned by an earlier trap');
    this.lastAbort = undefined;
    if (this.fuel) this.fuel.value = this.fuelPerCall;
    let result: number | void;
    try {
      result = fn();
    } catch (err) {
      this.poisoned = true;
      if (err instanceof PluginError) throw err;
      if (this.fuel && (this.fuel.value as number) < 0) {
        throw new PluginError('MELTEMI_PLUGIN_TRAP', this.file, `trap: exceeded its budget of ${this.fuelPerCall} loop iterations and calls in one call (stuck in a loop?)`, { cause: err });
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

  private trapMessage(err: unknown): string {
    return this.lastAbort ?? (err instanceof Error ? err.message : String(err));
  }

  private violation(message: string): PluginError {
    this.poisoned = true;
    return new PluginError('MELTEMI_ABI_VIOLATION', this.file, message);
  }

  private codecError(call: string, status: number): PluginError {
    return new PluginError('MELTEMI_CODEC_ERROR', this.file, `${call} returned ${status}: ${this.errorText() ?? 'no message'}`);
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

function checkRef(off: number, len: number, limit: number): boolean {
  return off >= 0 && len >= 0 && off + len <= limit;
}
