// What a codec author implements. The SDK's exports (exports.ts) turn ABI calls into calls on
// these methods, so an author never touches the control block, records or IN/OUT regions.

import { Bytes, Output } from "./bytes";
import { Frame } from "./metadata";
import { Mutation } from "./mutation";
import { STATUS_UNCHANGED, STATUS_UNSUPPORTED } from "./abi";

export abstract class Codec {
  /**
   * Set by `configure` to refuse the listener's `codec_config`: the context is not created and
   * the proxy refuses the listener with this message (naming `codec_config`).
   */
  configError: string = "";

  /** Called once per context with the listener's `codec_config` (UTF-8 JSON, may be empty). */
  configure(config: Bytes): void {}

  /**
   * Decodes one frame at the start of `input`.
   * Returns its length (> 0) after describing it through `frame`; 0 when more bytes are needed
   * (set `frame.needBytes` to the total length if known); a negative `STATUS_*` when the bytes are
   * not a valid frame (say why with `frame.fail`). `frame.messageType` is preset to request, or to
   * response when `upstream` is true.
   */
  abstract decode(input: Bytes, frame: Frame, upstream: bool): i32;

  /**
   * Re-encodes `frame` applying `mutation`. Return `STATUS_UNCHANGED` to forward the original
   * bytes, or write the new frame to `out` and return `STATUS_OK`.
   */
  encode(frame: Bytes, messageType: u8, upstream: bool, mutation: Mutation, out: Output): i32 {
    return STATUS_UNCHANGED;
  }

  /**
   * Writes to `out` an error reply to `request` (which may be empty) for a local failure of kind
   * `kind` (`ERR_*`), echoing the request's id. Returns `STATUS_OK` or a negative status.
   */
  abstract localReply(request: Bytes, kind: i32, message: Bytes, out: Output): i32;

  /** Writes the reply to a heartbeat frame. */
  heartbeatReply(request: Bytes, out: Output): i32 {
    return STATUS_UNSUPPORTED;
  }

  /**
   * ABI 1.2, server-first sessions: the client's login (`login`, sent after another server's
   * greeting) routes to a server whose greeting is `greeting`. Without `answer` (null): write to
   * `out` what asks the client to authenticate again for this server (MySQL: an auth switch
   * request). With the client's `answer`: write the login to send to this server. Return
   * `STATUS_UNSUPPORTED` if the protocol cannot move a login (the host then refuses it).
   */
  rebind(greeting: Bytes, login: Bytes, answer: Bytes | null, out: Output): i32 {
    return STATUS_UNSUPPORTED;
  }
}

/** How the host matches responses to requests (ABI.md §2). */
export enum Correlation { Order = 0, RequestId = 1 }

/** What the plugin declares about itself (ABI.md §2). */
export class CodecInfo {
  constructor(
    public name: string,
    public protocol: string,
    public version: string,
    public correlation: Correlation = Correlation.Order,
    public passthroughEncode: bool = true,
    /** ABI 1.2: the server speaks first (a greeting); implies `bindUpstream`. */
    public serverFirst: bool = false,
    /** ABI 1.2: each client connection gets one upstream connection for its life (a session). */
    public bindUpstream: bool = false,
    /**
     * ABI 1.3: every upstream decode reads `Session.expected()` (the word the request set with
     * `Frame.expect`), on pooled connections too; decode then stops after each whole response.
     * Order correlation only.
     */
    public expectResponses: bool = false,
  ) {}

  /** The lowest ABI minor version whose features this codec uses (what it declares). */
  get abiMinor(): i32 {
    if (this.expectResponses) return 3;
    return this.serverFirst || this.bindUpstream ? 2 : 1;
  }
}
