// MySQL packets for the fuzzer and the codec's harness tests: what MariaDB and mysql2 send,
// built from the protocol's layouts (lengths, sequence numbers and capability flags as they are).

import type { Corpus } from './corpus';

export function packet(seq: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const h = Buffer.alloc(4);
  h.writeUIntLE(body.length, 0, 3);
  h[3] = seq & 0xff;
  return Buffer.concat([h, body]);
}

export const CAPS = {
  CONNECT_WITH_DB: 8, COMPRESS: 32, PROTOCOL_41: 512, SSL: 2048, SECURE_CONNECTION: 32768,
  MULTI_RESULTS: 1 << 17, PLUGIN_AUTH: 1 << 19, CONNECT_ATTRS: 1 << 20, PLUGIN_AUTH_LENENC: 1 << 21, DEPRECATE_EOF: 1 << 24,
} as const;

const SERVER_CAPS = 0xffff_f7fe; // everything but CLIENT_MYSQL (MariaDB) and SSL bit left to tests

/** A HandshakeV10 greeting as MariaDB sends it. */
export function greeting(opts: { caps?: number; plugin?: string; scramble?: Buffer } = {}): Buffer {
  const caps = opts.caps ?? SERVER_CAPS;
  const scramble = opts.scramble ?? Buffer.from('abcdefghijklmnopqrst');
  const plugin = opts.plugin ?? 'mysql_native_password';
  const b = Buffer.alloc(4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 6 + 4);
  let p = 0;
  b.writeUInt32LE(7, p); p += 4; // connection id
  scramble.copy(b, p, 0, 8); p += 8;
  b[p++] = 0;
  b.writeUInt16LE(caps & 0xffff, p); p += 2;
  b[p++] = 45;
  b.writeUInt16LE(2, p); p += 2;
  b.writeUInt16LE(caps >>> 16, p); p += 2;
  b[p++] = 21;
  p += 6;
  b.writeUInt32LE(0x1d, p); // MariaDB extended capabilities
  return packet(0, Buffer.concat([Buffer.from([10]), Buffer.from('10.11.19-MariaDB\0'), b, scramble.subarray(8, 20), Buffer.from([0]), Buffer.from(plugin + '\0')]));
}

/** A HandshakeResponse41. */
export function login(opts: { user?: string; database?: string; auth?: Buffer; caps?: number; attrs?: boolean } = {}): Buffer {
  let caps = opts.caps ?? (CAPS.PROTOCOL_41 | CAPS.SECURE_CONNECTION | CAPS.PLUGIN_AUTH | CAPS.PLUGIN_AUTH_LENENC | CAPS.MULTI_RESULTS | CAPS.DEPRECATE_EOF);
  if (opts.database !== undefined) caps |= CAPS.CONNECT_WITH_DB;
  if (opts.attrs) caps |= CAPS.CONNECT_ATTRS;
  const head = Buffer.alloc(32);
  head.writeUInt32LE(caps >>> 0, 0);
  head.writeUInt32LE(1 << 24, 4);
  head[8] = 45;
  const auth = opts.auth ?? Buffer.alloc(20, 7);
  const parts = [head, Buffer.from((opts.user ?? 'app') + '\0'), Buffer.from([auth.length]), auth];
  if (opts.database !== undefined) parts.push(Buffer.from(opts.database + '\0'));
  parts.push(Buffer.from('mysql_native_password\0'));
  if (opts.attrs) parts.push(Buffer.from([13, 7]), Buffer.from('_client'), Buffer.from([4]), Buffer.from('node'));
  return packet(1, Buffer.concat(parts));
}

export const command = (cmd: number, arg: Buffer | string = '') => packet(0, Buffer.concat([Buffer.from([cmd]), typeof arg === 'string' ? Buffer.from(arg) : arg]));
export const query = (sql: string) => command(3, sql);
export const ok = (seq: number, status = 2) => packet(seq, Buffer.from([0, 0, 0, status & 0xff, status >> 8, 0, 0]));
export const eof = (seq: number, status = 2) => packet(seq, Buffer.from([0xfe, 0, 0, status & 0xff, status >> 8]));
export const okEof = (seq: number, status = 2) => packet(seq, Buffer.from([0xfe, 0, 0, status & 0xff, status >> 8, 0, 0]));
export const err = (seq: number, code = 1064, message = 'syntax') => packet(seq, Buffer.concat([Buffer.from([0xff, code & 0xff, code >> 8]), Buffer.from('#42000' + message)]));
export function columnDef(seq: number, name: string): Buffer {
  const lenc = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
  return packet(seq, Buffer.concat([lenc('def'), lenc('shop'), lenc('items'), lenc('items'), lenc(name), lenc(name), Buffer.from([0x0c, 45, 0, 40, 0, 0, 0, 253, 0, 0, 0, 0, 0])]));
}
export const row = (seq: number, ...values: string[]) => packet(seq, Buffer.concat(values.map((v) => Buffer.concat([Buffer.from([v.length]), Buffer.from(v)]))));

/** A text result set: column count, definitions, EOF, rows, EOF (classic framing). */
export function resultSet(columns: string[], rows: string[][], status = 2): Buffer {
  let seq = 1;
  const parts = [packet(seq++, Buffer.from([columns.length]))];
  for (const c of columns) parts.push(columnDef(seq++, c));
  parts.push(eof(seq++));
  for (const r of rows) parts.push(row(seq++, ...r));
  parts.push(eof(seq++, status));
  return Buffer.concat(parts);
}

export function prepareOk(seq: number, stmt: number, columns: number, params: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = 0;
  b.writeUInt32LE(stmt, 1);
  b.writeUInt16LE(columns, 5);
  b.writeUInt16LE(params, 7);
  return packet(seq, b);
}

export function mysqlCorpus(): Corpus {
  return {
    requests: [
      login({ database: 'shop' }), login({ user: 'reporter', attrs: true }), login({ caps: CAPS.PROTOCOL_41 | CAPS.SSL }),
      query('SELECT name FROM items WHERE id = 1'), query('/* c */ INSERT INTO `shop`.`items` VALUES (1)'), query('USE orders'),
      command(0x16, 'SELECT * FROM t WHERE a = ?'), command(0x17, Buffer.from([1, 0, 0, 0, 0, 1, 0, 0, 0])), command(0x19, Buffer.from([1, 0, 0, 0])),
      command(0x0e), command(0x01), command(0x02, 'orders'), command(0x04, 'items\0'), command(0x11, 'other\0\0'),
      packet(3, Buffer.alloc(20, 1)), packet(2, ''), packet(0, Buffer.alloc(0)),
    ],
    responses: [
      greeting(), greeting({ plugin: 'client_ed25519' }), err(0, 1129, 'Host blocked'), ok(2), err(2, 1045, 'denied'),
      packet(2, Buffer.concat([Buffer.from([0xfe]), Buffer.from('mysql_native_password\0'), Buffer.alloc(21, 3)])), packet(2, Buffer.from([1, 3])),
      resultSet(['id', 'name'], [['1', 'pen'], ['2', 'ink']]), resultSet(['x'], [], 10), ok(1, 10),
      prepareOk(1, 1, 2, 1), columnDef(2, 'a'), eof(3), row(4, 'x'), okEof(5), packet(1, Buffer.from([0xfb, 0x2f, 0x74])),
      packet(1, 'Uptime: 5  Threads: 1'), packet(1, Buffer.from([0, 1, 2, 3])),
    ],
  };
}
