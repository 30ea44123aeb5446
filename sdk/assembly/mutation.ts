// Encode-side Mutation (ABI.md §6.2): ordered SET / APPEND / DELETE / SET_REQUEST_ID operations
// that the host asks the codec to apply while encoding a frame.

import { Bytes } from "./bytes";
import { MUTATION_HEADER_SIZE, MUTATION_OP_HEADER_SIZE, OP_SET_REQUEST_ID } from "./abi";

/** One op, reused while iterating a `Mutation`. */
export class MutationOp {
  op: u8 = 0;
  keyId: u16 = 0;
  /** Empty when `keyId` names a well-known key. */
  key: Bytes = new Bytes();
  value: Bytes = new Bytes();
}

export class Mutation {
  private ptr: usize = 0;
  private end: usize = 0;
  private cursor: usize = 0;
  private remaining: u32 = 0;
  count: u32 = 0;
  /** The current op while iterating with `next()`. */
  readonly current: MutationOp = new MutationOp();
  /** Set when the mutation carries a SET_REQUEST_ID op (the last one wins). */
  hasRequestId: bool = false;
  requestId: u64 = 0;

  /** @internal Binds to a mutation buffer; returns false if it is malformed. */
  bind(ptr: usize, len: i32): bool {
    this.ptr = ptr;
    this.end = ptr + <usize>len;
    this.count = len >= MUTATION_HEADER_SIZE ? load<u32>(ptr) : 0;
    this.hasRequestId = false;
    this.rewind();
    while (this.next()) {
      if (this.current.op == OP_SET_REQUEST_ID) {
        if (this.current.value.length != 8) return false;
        this.hasRequestId = true;
        this.requestId = load<u64>(this.current.value.ptr);
      }
    }
    const ok = this.remaining == 0;
    this.rewind();
    return ok;
  }

  get isEmpty(): bool { return this.count == 0; }

  rewind(): void {
    this.cursor = this.ptr + MUTATION_HEADER_SIZE;
    this.remaining = this.count;
  }

  /** Advances to the next op; false at the end or on a malformed op. */
  next(): bool {
    if (this.remaining == 0) return false;
    const p = this.cursor;
    if (p + MUTATION_OP_HEADER_SIZE > this.end) return false;
    const keyLen = load<u32>(p, 4);
    const valLen = load<u32>(p, 8);
    const body = p + MUTATION_OP_HEADER_SIZE;
    const total = (<usize>keyLen + <usize>valLen + 3) & ~3;
    if (keyLen > 0x7fffffff || valLen > 0x7fffffff || body + total > this.end) return false;
    const op = this.current;
    op.op = load<u8>(p);
    op.keyId = load<u16>(p, 2);
    op.key.reset(body, <i32>keyLen);
    op.value.reset(body + <usize>keyLen, <i32>valLen);
    this.cursor = body + total;
    this.remaining--;
    return true;
  }

}
