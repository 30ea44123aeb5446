// The host side of every codec ABI call (sdk/ABI.md §4) on one instantiated module (the generic
// hosting — IN/OUT, bounds, fuel, traps — is wasm/wasm-instance.ts). The instance is shared by all
// connections of the thread; each connection owns a context id. Every call copies its input into
// IN, reads the control block, bounds-checks what the guest wrote, and copies out whatever must
// outlive the next call.

import type { Logger } from '../core/logger';
import { CallFlag, Ctrl, EntryFlag, ErrorKindValue, FrameFlag, Layout, MessageTypeValue, RebindFlag, SESSION_WORDS, Status, align8 } from '../wasm/abi';
import { Metadata } from './metadata';
import { PluginDescriptor, parseDescriptor } from '../plugin/plugin-descriptor';
import { BaseExports, WasmInstance } from '../wasm/wasm-instance';

interface CodecExports extends BaseExports {
  meltemi_context_new: (ctx: number, flags: number, cfgLen: number) => number;
  meltemi_context_free: (ctx: number) => number;
  meltemi_decode: (ctx: number, len: number, flags: number) => number;
  meltemi_encode: (ctx: number, frameLen: number, mutLen: number, flags: number) => number;
  meltemi_local_reply: (ctx: number, frameLen: number, kind: number, msgLen: number, flags: number) => number;
  meltemi_heartbeat_reply: (ctx: number, frameLen: number, flags: number) => number;
  meltemi_rebind?: (ctx: number, greetingLen: number, loginLen: number, answerLen: number, flags: number) => number;
}

/**
 * ABI 1.2: the state of one bound session (a client connection and its upstream connection),
 * kept by the host so that a context recreated after a trap or in another instance goes on
 * where the last one stopped. Every codec call on the session's contexts sees and updates it.
 */
export class SessionState {
  readonly words = new Int32Array(SESSION_WORDS);
  /** The `expect` word of the request the next upstream response answers (0: none). */
  expect = 0;
}

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
  private readonly wasm: WasmInstance<CodecExports>;
  private readonly ex: CodecExports;

  constructor(
    readonly module: WebAssembly.Module,
    readonly file: string,
    logger: Logger,
    /** Guest memory above which the instance counts as faulty (replaced like after a trap). */
    maxMemoryBytes = Number.POSITIVE_INFINITY,
    /** Fuel (instructions) one ABI call may use, when the module is metered; the module itself refills it. */
    fuelPerCall = 0,
  ) {
    this.wasm = new WasmInstance<CodecExports>(module, file, logger, maxMemoryBytes, fuelPerCall);
    this.ex = this.wasm.ex;
    this.descriptor = parseDescriptor(file, this.wasm.info);
  }

  /** Set once a call trapped; the owner must replace the instance. */
  get poisoned(): boolean {
    return this.wasm.poisoned;
  }

  // ---- ABI calls -------------------------------------------------------------------------

  contextNew(ctx: number, upstream: boolean, config: Buffer): void {
    this.wasm.writeIn(config, 0);
    const status = this.wasm.call(() => this.ex.meltemi_context_new(ctx, upstream ? CallFlag.SIDE_UPSTREAM : 0, config.length));
    if (status !== Status.OK) throw this.wasm.statusError('meltemi_context_new', status);
  }

  contextFree(ctx: number): void {
    if (this.poisoned) return;
    this.wasm.call(() => this.ex.meltemi_context_free(ctx));
  }

  decode(ctx: number, input: Buffer, flags: number, session?: SessionState): DecodeResult {
    this.wasm.writeIn(input, 0);
    if (session) this.enter(session);
    const status = this.wasm.invoke(this.ex.meltemi_decode, ctx, input.length, flags);
    if (session) this.leave(session);
    const i32 = this.wasm.i32;
    const c = this.wasm.ctrl >> 2;
    const consumed = i32[c + (Ctrl.CONSUMED >> 2)] >>> 0;
    const count = i32[c + (Ctrl.FRAME_COUNT >> 2)] >>> 0;
    const need = i32[c + (Ctrl.NEED >> 2)] >>> 0;
    if (consumed > input.length) throw this.wasm.violation(`decode consumed ${consumed} of ${input.length} bytes`);
    const frames = count > 0 ? this.readRecords(input, count, consumed) : [];
    const error = status < 0 ? this.wasm.errorText() ?? `status ${status}` : undefined;
    return { status: status < 0 ? status : 0, consumed, need, frames, error };
  }

  /** Encodes `frame` with `mutation`; returns null when the codec forwards the frame unchanged. */
  encode(ctx: number, frame: Buffer, mutation: Buffer, messageType: MessageTypeValue, upstream: boolean, session?: SessionState): Buffer | null {
    this.wasm.writeIn(frame, 0);
    const mutAt = align8(frame.length);
    this.wasm.writeIn(mutation, mutAt);
    const flags = messageType | (upstream ? CallFlag.ENCODE_SIDE_UPSTREAM : 0);
    if (session) this.enter(session);
    const status = this.wasm.call(() => this.ex.meltemi_encode(ctx, frame.length, mutation.length, flags));
    if (session) this.leave(session);
    if (status === Status.UNCHANGED) return null;
    if (status !== Status.OK) throw this.wasm.statusError('meltemi_encode', status);
    return Buffer.from(this.wasm.outBytes());
  }

  localReply(ctx: number, request: Buffer | null, kind: ErrorKindValue, message: string, session?: SessionState): Buffer {
    const frame = request ?? Buffer.alloc(0);
    const msg = Buffer.from(message, 'utf8');
    this.wasm.writeIn(frame, 0);
    this.wasm.writeIn(msg, align8(frame.length));
    if (session) this.enter(session);
    const status = this.wasm.call(() => this.ex.meltemi_local_reply(ctx, frame.length, kind, msg.length, 0));
    if (session) this.leave(session);
    if (status !== Status.OK) throw this.wasm.statusError('meltemi_local_reply', status);
    return Buffer.from(this.wasm.outBytes());
  }

  /** The reply to a heartbeat, or null when the protocol has none. */
  heartbeatReply(ctx: number, frame: Buffer, session?: SessionState): Buffer | null {
    this.wasm.writeIn(frame, 0);
    if (session) this.enter(session);
    const status = this.wasm.call(() => this.ex.meltemi_heartbeat_reply(ctx, frame.length, 0));
    if (session && status >= 0) this.leave(session);
    if (status === Status.UNSUPPORTED) return null;
    if (status !== Status.OK) throw this.wasm.statusError('meltemi_heartbeat_reply', status);
    return Buffer.from(this.wasm.outBytes());
  }

  /**
   * ABI 1.2: moves a session's login to another upstream. Without `answer`: the bytes that ask
   * the client to prove itself again for the new upstream's `greeting`; with the client's
   * `answer`: the bytes that log in to the new upstream. Null when the codec cannot (no export,
   * or UNSUPPORTED).
   */
  rebind(ctx: number, greeting: Buffer, login: Buffer, answer: Buffer | null, session: SessionState): Buffer | null {
    const fn = this.ex.meltemi_rebind;
    if (fn === undefined) return null;
    this.wasm.writeIn(greeting, 0);
    const loginAt = align8(greeting.length);
    this.wasm.writeIn(login, loginAt);
    if (answer) this.wasm.writeIn(answer, align8(loginAt + login.length));
    this.enter(session);
    const status = this.wasm.call(() => fn(ctx, greeting.length, login.length, answer?.length ?? 0, answer ? RebindFlag.CLIENT_ANSWER : 0));
    if (status === Status.UNSUPPORTED) return null;
    if (status !== Status.OK) throw this.wasm.statusError('meltemi_rebind', status);
    this.leave(session);
    return Buffer.from(this.wasm.outBytes());
  }

  /** Hands a session's words (and the expected response) to the guest before a call. */
  private enter(session: SessionState): void {
    const i32 = this.wasm.i32;
    const c = this.wasm.ctrl >> 2;
    i32[c + (Ctrl.EXPECT >> 2)] = session.expect;
    i32.set(session.words, c + (Ctrl.SESSION >> 2));
  }

  /** Takes the session's words back after a call that succeeded (a trap leaves them as they were). */
  private leave(session: SessionState): void {
    const c = (this.wasm.ctrl >> 2) + (Ctrl.SESSION >> 2);
    session.words.set(this.wasm.i32.subarray(c, c + session.words.length));
  }

  /** Parameter count of an exported function (undefined when absent). */
  exportArity(name: string): number | undefined {
    return this.wasm.exportArity(name);
  }

  get memoryBytes(): number {
    return this.wasm.memoryBytes;
  }

  /** A copy of IN's bytes [off, off+len) as the guest left them. */
  private rewritten(off: number, len: number): Buffer {
    const inPtr = this.wasm.ctrlField(Ctrl.IN_PTR);
    this.wasm.checkRange(inPtr + off, len, 'a rewritten frame');
    return Buffer.from(this.wasm.u8.subarray(inPtr + off, inPtr + off + len));
  }

  private readRecords(input: Buffer, count: number, consumed: number): Metadata[] {
    const out = this.wasm.outBytes();
    if ((out.byteOffset & 7) !== 0) throw this.wasm.violation('OUT is not 8-byte aligned');
    // One copy of the batch serves every frame in it: entries and inline bytes outlive this call.
    const copy = new ArrayBuffer((out.length + 3) & ~3);
    new Uint8Array(copy).set(out);
    const ints = new Int32Array(copy);
    const bytes = Buffer.from(copy);
    const frames = new Array<Metadata>(count);
    let at = 0;
    let expectedOff = 0;
    for (let n = 0; n < count; n++) {
      if (at + Layout.RECORD_HEADER_SIZE > out.length) throw this.wasm.violation('metadata record outside OUT');
      const r = at >> 2;
      const recordLen = ints[r] >>> 0;
      const frameOff = ints[r + 1] >>> 0;
      const frameLen = ints[r + 2] >>> 0;
      const word3 = ints[r + 3];
      const entryCount = ints[r + 8] >>> 0;
      if (entryCount > (out.length - at) / Layout.ENTRY_SIZE || recordLen < Layout.RECORD_HEADER_SIZE + entryCount * Layout.ENTRY_SIZE
        || (recordLen & 7) !== 0 || at + recordLen > out.length) {
        throw this.wasm.violation(`metadata record ${n} has a bad length ${recordLen}`);
      }
      if (frameOff !== expectedOff || frameOff + frameLen > consumed) {
        throw this.wasm.violation(`metadata record ${n} frame [${frameOff}, +${frameLen}) does not follow the previous frame`);
      }
      expectedOff = frameOff + frameLen;
      const entBase = r + 10;
      for (let e = entBase, end = entBase + entryCount * 5; e < end; e += 5) {
        const flags = ints[e] >>> 16;
        // References into IN must stay inside the input; inline ones inside their record.
        if (!checkRef(ints[e + 1], ints[e + 2], flags & EntryFlag.INLINE_KEY ? recordLen : input.length)
          || !checkRef(ints[e + 3], ints[e + 4], flags & EntryFlag.INLINE_VALUE ? recordLen : input.length)) {
          throw this.wasm.violation(`metadata record ${n} entry ${(e - entBase) / 5} points outside its buffer`);
        }
      }
      const frameFlags = (word3 >>> 16) & 0xffff;
      // ABI 1.2: the codec changed the frame where it lay in IN (a sequence number): its bytes come from there.
      const frame = (frameFlags & FrameFlag.REWRITTEN) !== 0 ? this.rewritten(frameOff, frameLen) : input.subarray(frameOff, frameOff + frameLen);
      frames[n] = new Metadata(
        (word3 & 0xff) as MessageTypeValue, (word3 >>> 8) & 0xff, frameFlags,
        ints[r + 4] >>> 0, ints[r + 5] >>> 0, ints[r + 6] >>> 0, ints[r + 7] >>> 0,
        frame, input, bytes, ints, entBase, entryCount, at,
      );
      at += recordLen;
    }
    if (expectedOff !== consumed) throw this.wasm.violation(`frames cover ${expectedOff} bytes but decode consumed ${consumed}`);
    return frames;
  }
}

function checkRef(off: number, len: number, limit: number): boolean {
  return off >= 0 && len >= 0 && off + len <= limit;
}
