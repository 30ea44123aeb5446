// Just enough of the WebAssembly binary format to rewrite a module in one pass: a bounds-checked
// reader (LEB128, vectors, value and block types), a writer, and the module's sections. Every
// read past its end, every over-long LEB and every form meltemi does not know throws
// WasmFormatError with the byte offset: a hostile file is refused, never half-understood.

export class WasmFormatError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} (at byte ${offset})`);
  }
}

export class WasmReader {
  pos: number;

  constructor(readonly bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  fail(message: string, at = this.pos): never {
    throw new WasmFormatError(message, at);
  }

  byte(): number {
    if (this.pos >= this.end) this.fail('unexpected end');
    return this.bytes[this.pos++];
  }

  skip(n: number): void {
    if (n < 0 || this.pos + n > this.end) this.fail('unexpected end');
    this.pos += n;
  }

  /** An unsigned LEB128 of at most 32 bits. */
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      if (shift === 28 && b > 0x0f) this.fail('u32 out of range', this.pos - 1);
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    return this.fail('LEB128 too long');
  }

  /** Skips a signed or unsigned LEB128 of at most `bits` bits (the value is not needed). */
  skipLeb(bits: 32 | 33 | 64): void {
    const max = Math.ceil(bits / 7);
    for (let i = 0; i < max; i++) if ((this.byte() & 0x80) === 0) return;
    this.fail('LEB128 too long');
  }

  /** A signed LEB128 of at most 33 bits (block types: a type index when not negative). */
  s33(): number {
    let result = 0;
    let shift = 0;
    let b: number;
    do {
      if (shift >= 35) this.fail('LEB128 too long');
      b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return b & 0x40 ? result - 2 ** shift : result;
  }

  name(): string {
    const len = this.u32();
    const start = this.pos;
    this.skip(len);
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, len).toString('utf8');
  }

  /** A heap type (func, extern … or a type index): a negative s33 or an index. */
  heapType(): void {
    this.s33();
  }

  /** A value type: numeric, vector, funcref/externref, or (ref null? ht). */
  valType(): void {
    const t = this.byte();
    if (t === 0x7f || t === 0x7e || t === 0x7d || t === 0x7c || t === 0x7b || t === 0x70 || t === 0x6f) return;
    if (t === 0x63 || t === 0x64) return this.heapType();
    this.fail(`unsupported value type 0x${t.toString(16)}`, this.pos - 1);
  }

  /** A block type: empty, one value type, or a type index. */
  blockType(): void {
    const t = this.bytes[this.pos];
    if (t === 0x40) {
      this.pos++;
      return;
    }
    if (t === 0x7f || t === 0x7e || t === 0x7d || t === 0x7c || t === 0x7b || t === 0x70 || t === 0x6f || t === 0x63 || t === 0x64) return this.valType();
    if (this.s33() < 0) this.fail('invalid block type');
  }

  /** Limits; returns the minimum. 64-bit limits (memory64, table64) are refused. */
  limits(): number {
    const flags = this.byte();
    if (flags > 3) this.fail(flags > 7 ? 'invalid limits' : '64-bit memories and tables are not supported', this.pos - 1);
    const min = this.u32();
    if (flags & 1) this.u32();
    return min;
  }
}

/** A growable byte buffer: one allocation per doubling, not one per piece. */
export class WasmWriter {
  private buf = Buffer.allocUnsafe(256);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  bytes(b: Uint8Array | readonly number[]): this {
    this.reserve(b.length);
    if (b instanceof Uint8Array) this.buf.set(b, this.length);
    else for (let i = 0; i < b.length; i++) this.buf[this.length + i] = b[i];
    this.length += b.length;
    return this;
  }

  u32(v: number): this {
    return this.bytes(encodeU32(v));
  }

  name(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.u32(b.length).bytes(b);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

export function encodeU32(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

export function encodeS32(v: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

export interface Section {
  readonly id: number;
  /** The payload's bounds in the module's bytes. */
  readonly start: number;
  readonly end: number;
}

export const SectionId = { custom: 0, type: 1, import: 2, function: 3, table: 4, memory: 5, global: 6, export: 7, start: 8, element: 9, code: 10, data: 11, dataCount: 12, tag: 13 } as const;

/** Where each known section must stand (the binary format fixes their order). */
const ORDER: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

export function sectionRank(id: number): number {
  return ORDER[id] ?? 0;
}

/** The module's sections, checked for header, bounds, known ids and order. */
export function readSections(bytes: Uint8Array): Section[] {
  const r = new WasmReader(bytes);
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const m of magic) if (r.byte() !== m) r.fail('not a WebAssembly 1.0 module', 0);
  const sections: Section[] = [];
  let lastRank = 0;
  while (!r.done) {
    const at = r.pos;
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    if (id !== SectionId.custom) {
      const rank = ORDER[id];
      if (rank === undefined) r.fail(`unknown section id ${id}`, at);
      if (rank <= lastRank) r.fail(`section ${id} out of order or repeated`, at);
      lastRank = rank;
    }
    sections.push({ id, start, end: r.pos });
  }
  return sections;
}
