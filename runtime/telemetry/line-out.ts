// Where an access-log line is written: straight into the sink's current chunk, byte by byte,
// so a line costs no string building and no flattening. Values are byte strings (one char per
// byte, as metadata values are); a line that outgrows the chunk moves to a larger one.

export class LineOut {
  /** Where the line being written starts. */
  start = 0;

  constructor(public buf: Buffer, public pos: number, private readonly onFull: (out: LineOut, need: number) => void) {}

  /** Room for `n` more bytes (the sink moves the line to a new chunk if needed). */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.onFull(this, n);
  }

  /** A byte string as it is. */
  bytes(s: string): void {
    const n = s.length;
    this.ensure(n);
    // Past a few bytes Node's native copy beats a loop of charCodeAt (measured: 3 ns a byte looped).
    if (n > 16) {
      this.pos += this.buf.latin1Write(s, this.pos, n);
      return;
    }
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A byte string with control characters (and NEL, a line break to some log shippers) escaped: one request, one line. */
  escaped(s: string): void {
    // eslint-disable-next-line no-control-regex
    if (!/[\x00-\x1f\x7f\x85]/.test(s)) {
      this.bytes(s);
      return;
    }
    const n = s.length;
    this.ensure(n * 6);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x20 && c !== 0x7f && c !== 0x85) {
        buf[p++] = c;
        continue;
      }
      buf[p++] = 0x5c; // backslash
      if (c === 0x0a) buf[p++] = 0x6e; // n
      else if (c === 0x0d) buf[p++] = 0x72; // r
      else if (c === 0x09) buf[p++] = 0x74; // t
      else {
        buf[p++] = 0x75; // u00XX
        buf[p++] = 0x30;
        buf[p++] = 0x30;
        buf[p++] = HEX[c >> 4];
        buf[p++] = HEX[c & 15];
      }
    }
    this.pos = p;
  }

  /** A number in decimal (integers digit by digit; anything else as JavaScript prints it). */
  number(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) {
      this.bytes(String(v));
      return;
    }
    this.ensure(16);
    const buf = this.buf;
    const from = this.pos;
    let p = from;
    do {
      buf[p++] = 0x30 + (v % 10);
      v = Math.floor(v / 10);
    } while (v > 0);
    for (let i = from, j = p - 1; i < j; i++, j--) {
      const t = buf[i];
      buf[i] = buf[j];
      buf[j] = t;
    }
    this.pos = p;
  }
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');
