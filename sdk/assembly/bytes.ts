// Fast byte access for codecs. `Bytes` is a window over guest memory read with raw loads
// (several times faster per byte than Uint8Array/DataView indexing in AssemblyScript);
// `Output` is a growable buffer the SDK hands to encode/reply calls.

/** A read-only window [ptr, ptr+length) of guest memory. Callers check bounds with `length`. */
export class Bytes {
  constructor(public ptr: usize = 0, public length: i32 = 0) {}

  @inline reset(ptr: usize, length: i32): Bytes {
    this.ptr = ptr;
    this.length = length;
    return this;
  }

  @inline at(i: i32): u8 { return load<u8>(this.ptr + <usize>i); }
  @inline u16be(i: i32): u16 { return bswap<u16>(load<u16>(this.ptr + <usize>i)); }
  @inline u32be(i: i32): u32 { return bswap<u32>(load<u32>(this.ptr + <usize>i)); }
  @inline i32be(i: i32): i32 { return <i32>bswap<u32>(load<u32>(this.ptr + <usize>i)); }
  @inline u64be(i: i32): u64 { return bswap<u64>(load<u64>(this.ptr + <usize>i)); }
  @inline i16be(i: i32): i16 { return <i16>bswap<u16>(load<u16>(this.ptr + <usize>i)); }
  @inline i64be(i: i32): i64 { return <i64>bswap<u64>(load<u64>(this.ptr + <usize>i)); }
  @inline u16le(i: i32): u16 { return load<u16>(this.ptr + <usize>i); }
  @inline u64le(i: i32): u64 { return load<u64>(this.ptr + <usize>i); }
  @inline u32le(i: i32): u32 { return load<u32>(this.ptr + <usize>i); }

  /** First index of `b` in [from, length), or -1. */
  indexOf(b: u8, from: i32): i32 {
    const p = this.ptr;
    for (let i = from, n = this.length; i < n; i++) {
      if (load<u8>(p + <usize>i) == b) return i;
    }
    return -1;
  }

  /** Index of the "\r\n" starting at or after `from`, or -1. */
  indexOfCRLF(from: i32): i32 {
    const p = this.ptr;
    for (let i = from, n = this.length - 1; i < n; i++) {
      if (load<u8>(p + <usize>i) == 13 && load<u8>(p + <usize>i + 1) == 10) return i;
    }
    return -1;
  }

  /** Whether bytes [at, at+len) equal the ASCII string `s`. */
  equals(at: i32, len: i32, s: string): bool {
    if (len != s.length || at + len > this.length) return false;
    const p = this.ptr + <usize>at;
    for (let i = 0; i < len; i++) {
      if (<u32>load<u8>(p + <usize>i) != <u32>s.charCodeAt(i)) return false;
    }
    return true;
  }

  /** Like `equals`, ASCII case-insensitively (`s` must be lower case). */
  equalsLower(at: i32, len: i32, s: string): bool {
    if (len != s.length || at + len > this.length) return false;
    const p = this.ptr + <usize>at;
    for (let i = 0; i < len; i++) {
      let c = <u32>load<u8>(p + <usize>i);
      if (c - 65 < 26) c |= 32;
      if (c != <u32>s.charCodeAt(i)) return false;
    }
    return true;
  }

  /**
   * Parses an optionally signed decimal in [from, to). Returns `i64.MIN_VALUE` when the range is
   * empty, has a non-digit, or has more than 18 digits (so the caller never sees an overflow).
   */
  decimal(from: i32, to: i32): i64 {
    if (from >= to) return i64.MIN_VALUE;
    const p = this.ptr;
    let neg = false;
    let i = from;
    const first = load<u8>(p + <usize>i);
    if (first == 45 /* - */ || first == 43 /* + */) {
      neg = first == 45;
      i++;
      if (i == to) return i64.MIN_VALUE;
    }
    if (to - i > 18) return i64.MIN_VALUE;
    let v: i64 = 0;
    for (; i < to; i++) {
      const d = <i32>load<u8>(p + <usize>i) - 48;
      if (<u32>d > 9) return i64.MIN_VALUE;
      v = v * 10 + d;
    }
    return neg ? -v : v;
  }

  /** Decodes [at, at+len) as UTF-8. Allocates: keep it off the hot path. */
  toString(at: i32, len: i32): string {
    return String.UTF8.decodeUnsafe(this.ptr + <usize>at, <usize>len);
  }
}

/** A growable output buffer. The SDK resets it before each call; codecs only append. */
export class Output {
  buf: ArrayBuffer;
  ptr: usize;
  cap: i32;
  length: i32 = 0;

  constructor(initial: i32) {
    this.buf = new ArrayBuffer(initial);
    this.ptr = changetype<usize>(this.buf);
    this.cap = initial;
  }

  @inline clear(): void { this.length = 0; }

  /** Makes room for `n` more bytes; returns the address to write them at. */
  reserve(n: i32): usize {
    const need = this.length + n;
    if (need > this.cap) {
      let cap = this.cap << 1;
      while (cap < need) cap <<= 1;
      const next = new ArrayBuffer(cap);
      memory.copy(changetype<usize>(next), this.ptr, <usize>this.length);
      this.buf = next;
      this.ptr = changetype<usize>(next);
      this.cap = cap;
    }
    return this.ptr + <usize>this.length;
  }

  u8(v: u8): Output { store<u8>(this.reserve(1), v); this.length += 1; return this; }
  u16be(v: u16): Output { store<u16>(this.reserve(2), bswap<u16>(v)); this.length += 2; return this; }
  u32be(v: u32): Output { store<u32>(this.reserve(4), bswap<u32>(v)); this.length += 4; return this; }
  u64be(v: u64): Output { store<u64>(this.reserve(8), bswap<u64>(v)); this.length += 8; return this; }
  u16le(v: u16): Output { store<u16>(this.reserve(2), v); this.length += 2; return this; }
  u32le(v: u32): Output { store<u32>(this.reserve(4), v); this.length += 4; return this; }
  u64le(v: u64): Output { store<u64>(this.reserve(8), v); this.length += 8; return this; }

  /** Appends `len` bytes from guest address `src`. */
  copy(src: usize, len: i32): Output {
    const dst = this.reserve(len);
    memory.copy(dst, src, <usize>len);
    this.length += len;
    return this;
  }

  bytes(b: Bytes, at: i32, len: i32): Output { return this.copy(b.ptr + <usize>at, len); }

  /** Appends `s` as UTF-8. */
  string(s: string): Output {
    const n = String.UTF8.byteLength(s);
    const dst = this.reserve(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, dst);
    this.length += n;
    return this;
  }

  /** Appends the decimal digits of `v`. */
  decimal(v: i64): Output {
    if (v < 0) { this.u8(45); v = -v; }
    if (v == 0) return this.u8(48);
    let digits = 0;
    for (let t = v; t > 0; t /= 10) digits++;
    const dst = this.reserve(digits);
    for (let i = digits - 1; i >= 0; i--) {
      store<u8>(dst + <usize>i, <u8>(48 + v % 10));
      v /= 10;
    }
    this.length += digits;
    return this;
  }

  // Setters overwrite bytes already written (a length or an id patched after the body): `at`
  // plus the width must be within `length`.
  @inline setU8(at: i32, v: u8): void { store<u8>(this.ptr + <usize>at, v); }
  @inline setU16be(at: i32, v: u16): void { store<u16>(this.ptr + <usize>at, bswap<u16>(v)); }
  @inline setU16le(at: i32, v: u16): void { store<u16>(this.ptr + <usize>at, v); }
  @inline setU32be(at: i32, v: u32): void { store<u32>(this.ptr + <usize>at, bswap<u32>(v)); }
  @inline setU32le(at: i32, v: u32): void { store<u32>(this.ptr + <usize>at, v); }
  @inline setU64be(at: i32, v: u64): void { store<u64>(this.ptr + <usize>at, bswap<u64>(v)); }
  @inline setU64le(at: i32, v: u64): void { store<u64>(this.ptr + <usize>at, v); }
  @inline getU32le(at: i32): u32 { return load<u32>(this.ptr + <usize>at); }
  @inline getU16le(at: i32): u16 { return load<u16>(this.ptr + <usize>at); }

  /** Pads with zeros to a multiple of `align` (a power of two). */
  pad(align: i32): Output {
    const padded = (this.length + align - 1) & ~(align - 1);
    const n = padded - this.length;
    if (n > 0) {
      memory.fill(this.reserve(n), 0, <usize>n);
      this.length = padded;
    }
    return this;
  }
}
