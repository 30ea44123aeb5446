// What a filter author implements (ABI 1.1). A filter sees each request's metadata on its way to
// the router and decides: continue (optionally with mutations), answer with a local reply,
// pause (and be called again from a timer), or close the connection. The SDK's filter exports
// (filter-exports.ts) turn ABI calls into calls on these methods.

import { Bytes, Output } from "./bytes";
import { FILTER_CONTINUE, FILTER_LOCAL_REPLY, FILTER_PAUSE, OP_APPEND, OP_DELETE, OP_SET, RECORD_HEADER_SIZE, ENTRY_SIZE } from "./abi";
import { WELL_KNOWN_KEYS } from "./keys";

@external("meltemi", "now_ms")
declare function hostNowMs(): i32;
@external("meltemi", "set_timer")
declare function hostSetTimer(root: i32, req: i32, delayMs: i32): i32;

/** Milliseconds of a monotonic clock (wraps after 2^32 ms: compare differences as u32). */
export function nowMs(): u32 { return <u32>hostNowMs(); }

const INLINE_KEY: u16 = 1;

/** A metadata key as a filter names it: its well-known id (0 if none) and UTF-8 length. */
class KeyInfo {
  constructor(public key: string, public id: i32, public length: i32) {}
}

// Filters look up the same few literal keys on every request: remember them by identity, so
// each lookup is a pointer comparison instead of string comparisons against the key table.
const keyCache: KeyInfo[] = [];

function keyInfo(key: string): KeyInfo {
  for (let i = 0; i < keyCache.length; i++) if (changetype<usize>(keyCache[i].key) == changetype<usize>(key)) return keyCache[i];
  let id = 0;
  for (let j = 1; j < WELL_KNOWN_KEYS.length; j++) if (WELL_KNOWN_KEYS[j] == key) { id = j; break; }
  const info = new KeyInfo(key, id, String.UTF8.byteLength(key));
  if (keyCache.length < 16) keyCache.push(info);
  return info;
}

/** One request (or response) as a filter sees it: its metadata, and what the filter decides. */
export class FilterRequest {
  /** The host's number for this request, the same in every call about it. */
  id: i32 = 0;
  /** The root (configured use of the filter) the call is for. */
  root: i32 = 0;
  private rec: usize = 0;
  private recLen: i32 = 0;
  private readonly value: Bytes = new Bytes();
  private readonly whole: Bytes = new Bytes();
  /** @internal */ mutationCount: u32 = 0;
  /** @internal */ out: Output | null = null;
  /** @internal */ replyKind: i32 = 0;
  /** @internal */ replyMessage: string = "";

  /** @internal Binds to a metadata record in guest memory (recLen 0: no metadata, as in on_timer). */
  bind(root: i32, id: i32, rec: usize, recLen: i32, out: Output): void {
    this.root = root;
    this.id = id;
    this.rec = rec;
    this.recLen = recLen;
    this.out = out;
    this.mutationCount = 0;
  }

  get messageType(): u8 { return this.recLen >= RECORD_HEADER_SIZE ? load<u8>(this.rec + 12) : 0; }
  get status(): u8 { return this.recLen >= RECORD_HEADER_SIZE ? load<u8>(this.rec + 13) : 0; }
  get flags(): u16 { return this.recLen >= RECORD_HEADER_SIZE ? load<u16>(this.rec + 14) : 0; }
  get requestId(): u64 { return this.recLen >= RECORD_HEADER_SIZE ? load<u64>(this.rec + 16) : 0; }
  get entryCount(): i32 { return this.recLen >= RECORD_HEADER_SIZE ? <i32>load<u32>(this.rec + 32) : 0; }

  /** The first value of metadata key `key` (its bytes, valid during this call), or null. */
  getBytes(key: string): Bytes | null {
    const n = this.entryCount;
    if (n == 0) return null;
    const k = keyInfo(key);
    for (let i = 0; i < n; i++) {
      const e = this.rec + <usize>(RECORD_HEADER_SIZE + i * ENTRY_SIZE);
      const id = <i32>load<u16>(e);
      const matches = id != 0
        ? id == k.id
        : (k.id == 0 && <i32>load<u32>(e, 8) == k.length && (load<u16>(e, 2) & INLINE_KEY) != 0
          && this.whole.reset(this.rec, this.recLen).equals(<i32>load<u32>(e, 4), k.length, key));
      if (matches) return this.value.reset(this.rec + <usize>load<u32>(e, 12), <i32>load<u32>(e, 16));
    }
    return null;
  }

  /** The first value of `key` as text, or null (allocates: prefer getBytes on the hot path). */
  get(key: string): string | null {
    const v = this.getBytes(key);
    return v === null ? null : v.toString(0, v.length);
  }

  has(key: string): bool { return this.getBytes(key) !== null; }

  /** Continue with this mutation added to the request (applied by the codec when encoding). */
  set(key: string, value: string): void { this.op(OP_SET, key, value); }
  append(key: string, value: string): void { this.op(OP_APPEND, key, value); }
  remove(key: string): void { this.op(OP_DELETE, key, ""); }

  private op(op: u8, key: string, value: string): void {
    const o = this.out!;
    if (this.mutationCount == 0) o.u32le(0).u32le(0);
    const k = String.UTF8.byteLength(key);
    const v = String.UTF8.byteLength(value);
    o.u8(op).u8(0).u16le(0).u32le(<u32>k).u32le(<u32>v).string(key).string(value).pad(4);
    this.mutationCount++;
    o.setU32le(0, this.mutationCount);
  }

  /** Answer with a local reply of `kind` (`ERR_*`), encoded by the listener's codec. */
  reject(kind: i32, message: string): i32 {
    this.replyKind = kind;
    this.replyMessage = message;
    return FILTER_LOCAL_REPLY;
  }

  /** Pause this request and be called at `onTimer` after `delayMs`; returns FILTER_PAUSE (or
   * FILTER_CONTINUE when the host refused the timer, so the request is not held forever). */
  pauseFor(delayMs: i32): i32 {
    return hostSetTimer(this.root, this.id, delayMs) != 0 ? FILTER_PAUSE : FILTER_CONTINUE;
  }
}

export abstract class Filter {
  /**
   * Called once per configured use with the entry's `config` (UTF-8 JSON, `{}` when absent).
   * Return null to accept it, or the reason it is refused (named in the proxy's config error).
   */
  configure(config: Bytes): string | null { return null; }

  /** A request on its way to the router: FILTER_CONTINUE, FILTER_LOCAL_REPLY (req.reject),
   * FILTER_PAUSE (req.pauseFor) or FILTER_ABORT. */
  abstract onRequest(req: FilterRequest): i32;

  /** An answer on its way back (status tells an error): FILTER_CONTINUE or FILTER_ABORT. */
  onResponse(req: FilterRequest): i32 { return FILTER_CONTINUE; }

  /** A timer set with req.pauseFor fired (no metadata in `req` now): decide as in onRequest. */
  onTimer(req: FilterRequest, timer: i32): i32 { return FILTER_CONTINUE; }

  /** The request is over: drop what was kept for it. */
  onDone(reqId: i32): void {}
}

/** Calls beyond onRequest a filter can ask for (the host skips the others). */
export const CALL_RESPONSE: i32 = 1;
export const CALL_TIMER: i32 = 2;
export const CALL_DONE: i32 = 4;

/**
 * What the filter declares about itself. `calls`: which of onResponse, onTimer and onDone it
 * implements (CALL_* flags); the host makes no call it did not ask for, which saves a guest call
 * per request for each one left out.
 */
export class FilterInfo {
  constructor(public name: string, public version: string, public calls: i32 = CALL_RESPONSE | CALL_TIMER | CALL_DONE) {}
}

export let registeredFilterInfo: FilterInfo | null = null;
export let registeredFilterFactory: (() => Filter) | null = null;

/** Declares this module a filter; `factory` makes one Filter per configured use (root). */
export function registerFilter(info: FilterInfo, factory: () => Filter): void {
  registeredFilterInfo = info;
  registeredFilterFactory = factory;
}
