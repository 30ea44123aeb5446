// A test harness for codec authors: loads a .wasm through meltemi's real loader (the same
// validation, ABI calls and bounds checks as the proxy) and runs it over byte fixtures.
//
//   const codec = await CodecHarness.load('build/plugins/redis.wasm');
//   const [frame] = codec.decode(Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n')).frames;
//   assert.equal(frame.get('key'), 'k');

import { ConsoleLogger, Logger } from '../../runtime/core/logger';
import { CallFlag, ErrorKindValue, MessageTypeValue } from '../../runtime/wasm/abi';
import { CodecContext, CodecPlugin } from '../../runtime/codec/codec-plugin';
import { SessionState } from '../../runtime/codec/codec-instance';
import type { Metadata } from '../../runtime/codec/metadata';
import { Mutation } from '../../runtime/codec/mutation';
import { acceptPlugin } from '../../runtime/plugin/plugin-accept';
import type { PluginDescriptor } from '../../runtime/plugin/plugin-descriptor';

export { Mutation };
export { ErrorKind, FrameFlag, MessageType, ResponseStatus } from '../../runtime/wasm/abi';

/** The proxy's defaults (docs/config.md, plugins.*). */
const HARNESS_LIMITS = { maxFileBytes: 32 * 1024 ** 2, maxMemoryBytes: 512 * 1024 ** 2, fuelPerCall: 2_000_000_000 };
export type { Metadata, PluginDescriptor };

export interface HarnessFrame {
  readonly type: MessageTypeValue;
  readonly status: number;
  readonly flags: number;
  readonly requestId: bigint;
  readonly streamId: bigint;
  readonly bytes: Buffer;
  /** ABI 1.2: the request's word about the response it expects (bound sessions). */
  readonly expect: number;
  /** Metadata entries in order, values as UTF-8 text. */
  readonly metadata: ReadonlyArray<readonly [string, string]>;
  /** First value of a key (UTF-8), or undefined. */
  get(key: string): string | undefined;
}

export interface HarnessDecode {
  readonly status: number;
  readonly consumed: number;
  readonly need: number;
  readonly error: string | undefined;
  readonly frames: HarnessFrame[];
}

export class CodecHarness {
  private readonly down: CodecContext;
  private readonly up: CodecContext;

  /** ABI 1.2: the session both sides share, for a codec that binds one (as a proxy connection would); ABI 1.3: the upstream side's state for a codec that reads `expect`. */
  readonly session: SessionState | undefined;

  private constructor(readonly plugin: CodecPlugin, config: Buffer) {
    this.down = plugin.open(false, config).create();
    this.up = plugin.open(true, config).create();
    if (plugin.descriptor.bindUpstream) this.session = this.down.session = this.up.session = new SessionState();
    // ABI 1.3: a pooled upstream connection's own state carries `expect`.
    else if (plugin.descriptor.expectResponses) this.session = this.up.session = new SessionState();
  }

  /**
   * Loads a plugin file the way the proxy does — every loader rule, the memory cap, fuel
   * metering, the canary and the self-test — so a build the proxy would refuse fails here with
   * the same reason. `config` is what a listener's `codec_config` would pass.
   */
  static async load(file: string, opts: { config?: Record<string, unknown>; logger?: Logger } = {}): Promise<CodecHarness> {
    const logger = opts.logger ?? new ConsoleLogger('warn');
    const accepted = await acceptPlugin(file, HARNESS_LIMITS);
    if (accepted.unchanged) throw new Error('unreachable: no known build to compare with');
    const compiled = { file, sha256: accepted.sha256, module: accepted.module, descriptor: accepted.descriptor, loadedAt: new Date() };
    const config = Buffer.from(opts.config ? JSON.stringify(opts.config) : '', 'utf8');
    return new CodecHarness(new CodecPlugin(compiled, logger, 1, HARNESS_LIMITS.maxMemoryBytes, HARNESS_LIMITS.fuelPerCall), config);
  }

  get descriptor(): PluginDescriptor {
    return this.plugin.descriptor;
  }

  /** One decode call over `bytes` (requests, or responses with `upstream`). */
  decode(bytes: Buffer, opts: { upstream?: boolean; endOfStream?: boolean; expect?: number } = {}): HarnessDecode {
    // Codecs that read `expect`: the word of the request a response answers, as the proxy hands it over.
    if (this.session) this.session.expect = opts.expect ?? 0;
    const flags = (opts.upstream ? CallFlag.SIDE_UPSTREAM : 0) | (opts.endOfStream ? CallFlag.DECODE_END_OF_STREAM : 0);
    const r = (opts.upstream ? this.up : this.down).decode(bytes, flags);
    return { status: r.status, consumed: r.consumed, need: r.need, error: r.error, frames: r.frames.map(toFrame) };
  }

  /**
   * Decodes `bytes` the way a connection would see them when they arrive split at `cut`:
   * the first part, then the unconsumed rest plus the second part. Returns all frames.
   */
  decodeSplit(bytes: Buffer, cut: number, opts: { upstream?: boolean } = {}): HarnessFrame[] {
    const first = this.decode(bytes.subarray(0, cut), opts);
    if (first.status < 0) throw new Error(`decode failed on the first ${cut} bytes: ${first.error}`);
    const rest = Buffer.concat([bytes.subarray(first.consumed, cut), bytes.subarray(cut)]);
    const second = this.decode(rest, opts);
    if (second.status < 0) throw new Error(`decode failed after the cut at ${cut}: ${second.error}`);
    return [...first.frames, ...second.frames];
  }

  /** Encodes a frame with a mutation; returns the original bytes when the codec leaves it unchanged. */
  encode(frame: Buffer, mutation: Mutation = new Mutation(), opts: { type?: MessageTypeValue; upstream?: boolean } = {}): Buffer {
    const ctx = opts.upstream ? this.up : this.down;
    // As in the proxy: a request-id codec must apply SET_REQUEST_ID, never answer "unchanged".
    const rewritesId = mutation.setsRequestId && this.plugin.descriptor.correlation === 'request_id';
    return ctx.encode(frame, mutation.encode(), opts.type ?? 0, opts.upstream ?? false, rewritesId) ?? frame;
  }

  localReply(request: Buffer | null, kind: ErrorKindValue, message: string): Buffer {
    return this.down.localReply(request, kind, message);
  }

  heartbeatReply(frame: Buffer): Buffer | null {
    return this.down.heartbeatReply(frame);
  }

  /** ABI 1.2: meltemi_rebind (null when the codec cannot move a login). */
  rebind(greeting: Buffer, login: Buffer, answer: Buffer | null = null): Buffer | null {
    return this.down.rebind(greeting, login, answer);
  }

  close(): void {
    this.down.close();
    this.up.close();
  }
}

function toFrame(m: Metadata): HarnessFrame {
  const metadata = m.entries().map(([k, v]) => [Buffer.from(k, 'latin1').toString('utf8'), Buffer.from(v, 'latin1').toString('utf8')] as const);
  return {
    type: m.messageType,
    status: m.status,
    flags: m.flags,
    requestId: (BigInt(m.requestIdHi) << 32n) | BigInt(m.requestIdLo),
    streamId: (BigInt(m.streamIdHi) << 32n) | BigInt(m.streamIdLo),
    bytes: Buffer.from(m.frame),
    expect: m.expect,
    metadata,
    get: (key: string) => metadata.find(([k]) => k === key)?.[1],
  };
}
