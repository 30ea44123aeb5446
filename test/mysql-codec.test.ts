// The MySQL codec through the plugin-author harness: the session's phases (greeting, login,
// auth, commands), streamed result sets, statement parsing, local replies and rebind, each from
// packets laid out as MariaDB and mysql2 send them.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CodecHarness, ErrorKind, FrameFlag, MessageType, ResponseStatus } from '../sdk/harness/codec-harness';
import { PLUGIN_DIR } from './helpers/paths';
import { CAPS, columnDef, command, eof, err, greeting, login, ok, okEof, packet, prepareOk, query, resultSet, row } from './fuzz/mysql-corpus';

// Expect words (plugins/mysql/results.ts).
const EXPECT = { AUTH: 1, SIMPLE: 2, TEXT: 3, BINARY: 4, PREPARE: 5, FIELD_LIST: 6 };

describe('mysql codec (harness)', () => {
  let h: CodecHarness;
  beforeEach(async () => {
    h = await CodecHarness.load(join(PLUGIN_DIR, 'mysql.wasm'));
  });
  afterEach(() => h.close());

  /** Greeting, login and OK: the session in its command phase (DEPRECATE_EOF off unless asked). */
  function loggedIn(deprecateEof = false): void {
    h.decode(greeting({ caps: deprecateEof ? 0xffff_f7fe : 0xfeff_f7fe }), { upstream: true });
    h.decode(login({ database: 'shop' }));
    const r = h.decode(ok(2), { upstream: true, expect: EXPECT.AUTH });
    assert.equal(r.frames[0].type, MessageType.RESPONSE);
  }

  it('declares a server-first bound session (ABI 1.2)', () => {
    assert.equal(h.descriptor.abiMinor, 2);
    assert.equal(h.descriptor.serverFirst, true);
    assert.equal(h.descriptor.bindUpstream, true);
  });

  it('relays the greeting as unsolicited, with TLS, compression and MariaDB extensions taken out', () => {
    const g = greeting({ caps: 0xffff_fffe });
    const [f] = h.decode(g, { upstream: true }).frames;
    assert.ok(f.flags & FrameFlag.UNSOLICITED);
    assert.ok(f.flags & FrameFlag.REWRITTEN);
    const body = f.bytes.subarray(4);
    const at = body.indexOf(0, 1) + 1 + 4 + 8 + 1;
    const caps = body.readUInt16LE(at) | (body.readUInt16LE(at + 5) << 16);
    for (const bit of [CAPS.SSL, CAPS.COMPRESS, 1 << 26, 1 << 27, 1 << 25]) assert.equal(caps & bit, 0, `bit ${bit}`);
    assert.equal(body.readUInt32LE(at + 8 + 6), 0, 'MariaDB extended capabilities');
    assert.equal(f.bytes.length, g.length);
  });

  it('a login gives user and database, routes the session, and expects the auth answer', () => {
    h.decode(greeting(), { upstream: true });
    const [f] = h.decode(login({ user: 'reporter', database: 'orders', attrs: true })).frames;
    assert.equal(f.get('command'), 'LOGIN');
    assert.equal(f.get('user'), 'reporter');
    assert.equal(f.get('database'), 'orders');
    assert.ok(f.flags & FrameFlag.ROUTE);
    assert.equal(f.expect, EXPECT.AUTH);
  });

  const refusedLogins: Array<[string, Buffer, RegExp]> = [
    ['TLS asked for after it was not offered', login({ caps: CAPS.PROTOCOL_41 | CAPS.SSL }), /TLS/],
    ['a megabyte login', Buffer.concat([Buffer.from([0, 0, 16, 1])]), /too large/],
    ['no user name', packet(1, Buffer.concat([Buffer.from([0, 2, 0, 0]), Buffer.alloc(28), Buffer.from('x')])), /user name/],
  ];
  for (const [what, bytes, message] of refusedLogins) {
    it(`refuses a login: ${what}`, () => {
      h.decode(greeting(), { upstream: true });
      const r = h.decode(bytes);
      assert.ok(r.status < 0);
      assert.match(r.error ?? '', message);
    });
  }

  it('refuses a client that speaks before the greeting', () => {
    const r = h.decode(query('SELECT 1'));
    assert.ok(r.status < 0);
    assert.match(r.error ?? '', /before the server's greeting/);
  });

  const statements: Array<[sql: string, verb: string | undefined, table: string | undefined]> = [
    ['SELECT name FROM items WHERE id = 1', 'SELECT', 'items'],
    ['select * from `shop`.`items`', 'SELECT', 'items'],
    ['/* hint */ SELECT (SELECT 1 FROM a) AS x FROM b', 'SELECT', 'b'],
    ['  insert low_priority into orders (a) values (1)', 'INSERT', 'orders'],
    ['REPLACE INTO t2 SET a = 1', 'REPLACE', 't2'],
    ['UPDATE IGNORE stock SET n = n - 1', 'UPDATE', 'stock'],
    ['DELETE FROM logs WHERE ts < 5', 'DELETE', 'logs'],
    ['CREATE TABLE IF NOT EXISTS new_t (a INT)', 'CREATE', 'new_t'],
    ['DROP TABLE old_t', 'DROP', 'old_t'],
    ['-- comment\nSHOW TABLES', 'SHOW', undefined],
    ['SELECT 1', 'SELECT', undefined],
    ["SELECT 'from x' FROM real_t", 'SELECT', 'real_t'],
    ['(SELECT a FROM u1) UNION (SELECT a FROM u2)', 'SELECT', 'u1'],
    ['', undefined, undefined],
  ];
  for (const [sql, verb, table] of statements) {
    it(`statement ${JSON.stringify(sql.slice(0, 40))}: verb ${verb}, table ${table}`, () => {
      loggedIn();
      const [f] = h.decode(query(sql)).frames;
      assert.equal(f.get('command'), 'COM_QUERY');
      assert.equal(f.get('verb'), verb);
      assert.equal(f.get('table'), table);
      assert.equal(f.expect, EXPECT.TEXT);
    });
  }

  const commands: Array<[string, Buffer, string, number, Record<string, string>]> = [
    ['USE', query('USE orders'), 'COM_QUERY', MessageType.REQUEST, { database: 'orders' }],
    ['init db', command(0x02, 'orders'), 'COM_INIT_DB', MessageType.REQUEST, { database: 'orders' }],
    ['field list', command(0x04, 'items\0'), 'COM_FIELD_LIST', MessageType.REQUEST, { table: 'items' }],
    ['ping', command(0x0e), 'COM_PING', MessageType.REQUEST, {}],
    ['statement close (never answered)', command(0x19, Buffer.from([1, 0, 0, 0])), 'COM_STMT_CLOSE', MessageType.ONEWAY, {}],
    ['quit', command(0x01), 'COM_QUIT', MessageType.ONEWAY, {}],
    ['change user', command(0x11, 'other\0\0'), 'COM_CHANGE_USER', MessageType.REQUEST, { user: 'other' }],
    ['unknown', command(0xee), 'COM_UNKNOWN', MessageType.REQUEST, {}],
  ];
  for (const [what, bytes, name, type, keys] of commands) {
    it(`command ${what}: ${name}`, () => {
      loggedIn();
      const [f] = h.decode(bytes).frames;
      assert.equal(f.get('command'), name);
      assert.equal(f.type, type);
      for (const [k, v] of Object.entries(keys)) assert.equal(f.get(k), v);
    });
  }

  it('a result set streams as partial frames and ends at its last EOF', () => {
    loggedIn();
    h.decode(query('SELECT id, name FROM items'));
    const rs = resultSet(['id', 'name'], [['1', 'pen'], ['2', 'ink']]);
    // Arriving in two reads: the first part goes out at once, marked partial.
    const cut = rs.length - 8;
    const first = h.decode(rs.subarray(0, cut), { upstream: true, expect: EXPECT.TEXT });
    assert.equal(first.frames.length, 1);
    assert.ok(first.frames[0].flags & FrameFlag.PARTIAL);
    const second = h.decode(rs.subarray(first.consumed), { upstream: true, expect: EXPECT.TEXT });
    assert.equal(second.frames.length, 1);
    assert.equal(second.frames[0].flags & FrameFlag.PARTIAL, 0);
    assert.equal(first.consumed + second.consumed, rs.length);
  });

  it('more results: an EOF with SERVER_MORE_RESULTS_EXISTS keeps the response open', () => {
    loggedIn();
    h.decode(query('CALL two()'));
    const both = Buffer.concat([resultSet(['x'], [['1']], 2 | 8), ok(6, 2)]);
    const r = h.decode(both, { upstream: true, expect: EXPECT.TEXT });
    assert.equal(r.consumed, both.length);
    assert.equal(r.frames.at(-1)!.flags & FrameFlag.PARTIAL, 0);
  });

  it('a prepared statement answer: OK, parameters, EOF, columns, EOF; with DEPRECATE_EOF none', () => {
    loggedIn();
    const classic = Buffer.concat([prepareOk(1, 1, 1, 2), columnDef(2, 'p1'), columnDef(3, 'p2'), eof(4), columnDef(5, 'c'), eof(6)]);
    const r = h.decode(classic, { upstream: true, expect: EXPECT.PREPARE });
    assert.equal(r.consumed, classic.length);
    assert.equal(r.frames.at(-1)!.flags & FrameFlag.PARTIAL, 0);
  });

  it('DEPRECATE_EOF: rows end at an OK with the 0xFE header', async () => {
    h.close();
    h = await CodecHarness.load(join(PLUGIN_DIR, 'mysql.wasm'));
    loggedIn(true);
    h.decode(query('SELECT a FROM t'));
    const rs = Buffer.concat([packet(1, Buffer.from([1])), columnDef(2, 'a'), row(3, 'x'), okEof(4)]);
    const r = h.decode(rs, { upstream: true, expect: EXPECT.TEXT });
    assert.equal(r.consumed, rs.length);
    assert.equal(r.frames.at(-1)!.flags & FrameFlag.PARTIAL, 0);
  });

  it('an ERR in the middle of rows ends the response as an error', () => {
    loggedIn();
    const rs = Buffer.concat([packet(1, Buffer.from([1])), columnDef(2, 'a'), eof(3), row(4, 'x'), err(5, 1317, 'interrupted')]);
    const r = h.decode(rs, { upstream: true, expect: EXPECT.TEXT });
    assert.equal(r.frames.at(-1)!.status, ResponseStatus.ERROR);
  });

  const replies: Array<[string, number, Buffer | null, string]> = [
    ['permission denied at login', ErrorKind.PERMISSION_DENIED, login(), '1045'],
    ['protocol error', ErrorKind.PROTOCOL_ERROR, null, '1047'],
    ['timeout', ErrorKind.TIMEOUT, query('SELECT SLEEP(9)'), '1969'],
  ];
  for (const [what, kind, request, code] of replies) {
    it(`local reply: ${what} → ERR ${code}`, () => {
      if (request !== null) h.decode(greeting(), { upstream: true });
      if (request !== null) h.decode(login());
      const reply = h.localReply(request, kind as never, 'meltemi: no');
      assert.equal(reply[4], 0xff);
      const errno = reply.readUInt16LE(5);
      assert.equal(String(errno), code);
      assert.equal(reply[3], request === null ? 0 : request[3] + 1, 'sequence follows the request');
      assert.equal(reply.readUIntLE(0, 3), reply.length - 4);
    });
  }

  it('rebind: an auth switch with the new server\'s scramble, then the login rebuilt with the new proof', () => {
    h.decode(greeting(), { upstream: true });
    const theLogin = login({ user: 'app', database: 'orders', attrs: true });
    h.decode(theLogin);
    const fresh = greeting({ scramble: Buffer.from('ZYXWVUTSRQPONMLKJIHG') });
    const ask = h.rebind(fresh, theLogin)!;
    assert.equal(ask[3], 2);
    assert.equal(ask[4], 0xfe);
    assert.ok(ask.includes(Buffer.from('mysql_native_password\0ZYXWVUTS')));
    const [answer] = h.decode(packet(3, Buffer.alloc(20, 9))).frames;
    assert.ok(answer.flags & FrameFlag.REBIND);
    const relogin = h.rebind(fresh, theLogin, answer.bytes)!;
    assert.equal(relogin[3], 1);
    assert.ok(relogin.includes(Buffer.concat([Buffer.from([20]), Buffer.alloc(20, 9)])), 'the new proof');
    assert.ok(relogin.includes(Buffer.from('orders\0mysql_native_password\0')));
    assert.ok(relogin.includes(Buffer.from('_client')), 'connect attributes kept');
    // The server's answers are renumbered for the client: 2 → 4.
    const [okFrame] = h.decode(ok(2), { upstream: true, expect: EXPECT.AUTH }).frames;
    assert.equal(okFrame.bytes[3], 4);
  });
});
