// The Redis codec through the harness: requests (arrays, inline, pipelined, split anywhere),
// metadata (command, first key, connection-scoped commands), RESP2/RESP3 replies, errors and
// local replies. Table-driven: one row per case.

import assert from 'node:assert/strict';
import { CodecHarness } from '../sdk/harness/codec-harness';
import { ErrorKind, FrameFlag, MessageType, ResponseStatus, Status } from '../runtime/wasm/abi';
import { REDIS_WASM } from './helpers/paths';

const cmd = (...args: string[]) => `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');

describe('redis codec', () => {
  let redis: CodecHarness;
  before(async () => { redis = await CodecHarness.load(REDIS_WASM); });
  after(() => redis.close());

  it('declares itself', () => {
    assert.equal(redis.descriptor.protocol, 'redis');
    assert.equal(redis.descriptor.correlation, 'order');
    assert.equal(redis.descriptor.passthroughEncode, true);
  });

  describe('request metadata', () => {
    const cases: Array<[name: string, input: string, command: string | undefined, key: string | undefined]> = [
      ['GET', cmd('GET', 'user:1'), 'GET', 'user:1'],
      ['lower-case command is upper-cased', cmd('set', 'k', 'v'), 'SET', 'k'],
      ['keyless PING', cmd('PING'), 'PING', undefined],
      ['keyless INFO with an argument', cmd('INFO', 'server'), 'INFO', undefined],
      ['EVAL with one key', cmd('EVAL', 'return 1', '1', 'lock:a', 'x'), 'EVAL', 'lock:a'],
      ['EVAL with no keys', cmd('EVAL', 'return 1', '0'), 'EVAL', undefined],
      ['XREAD key follows STREAMS', cmd('XREAD', 'COUNT', '2', 'STREAMS', 'events', '0'), 'XREAD', 'events'],
      ['binary-safe key', cmd('GET', 'a\r\nb'), 'GET', 'a\r\nb'],
      ['inline command', 'get cache:x\r\n', 'GET', 'cache:x'],
      ['inline command with LF only and tabs', 'SET\tk1  v\n', 'SET', 'k1'],
      ['empty lines are glued onto the next command', '\r\n\r\nGET k\r\n', 'GET', 'k'],
      ['*0 is glued onto the next command', '*0\r\n' + cmd('GET', 'k2'), 'GET', 'k2'],
      // Lines redis-server reads as zero arguments get no reply: glued on too.
      ['a line of blanks is glued onto the next command', '\t\v \f\r\nGET k3\r\n', 'GET', 'k3'],
      ['a quoted inline argument', 'GET "a b"\r\n', 'GET', 'a b'],
      ['a single-quoted inline argument', "SET 'it''s' v\r\n".replace("''", "\\'"), 'SET', "it\\'s"],
      ['only the first byte decides the type: " *1" is inline', ' *1\r\n', '*1', undefined],
    ];
    for (const [name, input, command, key] of cases) {
      it(name, () => {
        const r = redis.decode(Buffer.from(input, 'latin1'));
        assert.equal(r.status, 0, r.error);
        assert.equal(r.frames.length, 1);
        assert.equal(r.consumed, Buffer.byteLength(input, 'latin1'));
        assert.equal(r.frames[0].type, MessageType.REQUEST);
        assert.equal(r.frames[0].get('command'), command);
        assert.equal(r.frames[0].get('key') === undefined ? undefined : Buffer.from(r.frames[0].get('key')!, 'utf8').toString('latin1'), key);
      });
    }
  });

  describe('connection-scoped commands', () => {
    const cases: Array<[string, boolean, boolean]> = [
      [cmd('SELECT', '1'), true, false],
      [cmd('multi'), true, false],
      [cmd('BLPOP', 'q', '0'), true, false],
      [cmd('XREAD', 'BLOCK', '0', 'STREAMS', 's', '$'), true, false],
      [cmd('XREAD', 'STREAMS', 's', '0'), false, false],
      [cmd('QUIT'), true, true],
      [cmd('GET', 'select'), false, false],
    ];
    for (const [input, scoped, drain] of cases) {
      it(`${JSON.stringify(input).slice(0, 40)}: scoped=${scoped} drain=${drain}`, () => {
        const [f] = redis.decode(Buffer.from(input)).frames;
        assert.equal((f.flags & FrameFlag.CONNECTION_SCOPED) !== 0, scoped);
        assert.equal((f.flags & FrameFlag.DRAIN_CLOSE) !== 0, drain);
      });
    }
  });

  it('frames a pipeline of mixed commands in one call', () => {
    const input = Buffer.from(cmd('SET', 'a', '1') + 'PING\r\n' + cmd('GET', 'a') + cmd('DEL', 'a', 'b'));
    const r = redis.decode(input);
    assert.deepEqual(r.frames.map((f) => f.get('command')), ['SET', 'PING', 'GET', 'DEL']);
    assert.equal(r.consumed, input.length);
  });

  it('frames the same commands wherever the input is split', () => {
    const input = Buffer.from(cmd('SET', 'key', 'x'.repeat(40)) + 'PING\r\n' + cmd('GET', 'key'));
    for (let cut = 0; cut <= input.length; cut++) {
      assert.deepEqual(redis.decodeSplit(input, cut).map((f) => [f.get('command'), f.get('key'), f.bytes.length]),
        [['SET', 'key', 69], ['PING', undefined, 6], ['GET', 'key', 22]], `split at ${cut}`);
    }
  });

  it('knows the length of a large bulk before it arrives (need)', () => {
    const value = 'v'.repeat(1 << 20);
    const full = Buffer.from(cmd('SET', 'big', value));
    const r = redis.decode(full.subarray(0, 100));
    assert.equal(r.frames.length, 0);
    assert.equal(r.need, full.length);
  });

  describe('replies', () => {
    const replies: Array<[name: string, input: string, status: number]> = [
      ['simple string', '+OK\r\n', ResponseStatus.OK],
      ['error', '-ERR wrong type\r\n', ResponseStatus.ERROR],
      ['integer', ':-42\r\n', ResponseStatus.OK],
      ['bulk', '$5\r\nhello\r\n', ResponseStatus.OK],
      ['null bulk', '$-1\r\n', ResponseStatus.OK],
      ['null array', '*-1\r\n', ResponseStatus.OK],
      ['empty array', '*0\r\n', ResponseStatus.OK],
      ['nested arrays', '*2\r\n*2\r\n:1\r\n$1\r\na\r\n*1\r\n+x\r\n', ResponseStatus.OK],
      ['RESP3 null', '_\r\n', ResponseStatus.OK],
      ['RESP3 double and boolean in a set', '~2\r\n,3.14\r\n#t\r\n', ResponseStatus.OK],
      ['RESP3 map', '%2\r\n+a\r\n:1\r\n+b\r\n(12345678901234567890\r\n', ResponseStatus.OK],
      ['RESP3 verbatim', '=15\r\ntxt:Some string\r\n', ResponseStatus.OK],
      ['RESP3 blob error', '!10\r\nSYNTAX bad\r\n', ResponseStatus.ERROR],
      ['RESP3 attribute before its value', '|1\r\n+ttl\r\n:3600\r\n$2\r\nok\r\n', ResponseStatus.OK],
      ['RESP3 push', '>3\r\n+message\r\n+ch\r\n+hi\r\n', ResponseStatus.OK],
    ];
    for (const [name, input, status] of replies) {
      it(name, () => {
        const bytes = Buffer.from(input);
        const r = redis.decode(Buffer.concat([bytes, bytes]), { upstream: true });
        assert.equal(r.status, 0, r.error);
        assert.equal(r.frames.length, 2, 'two replies framed');
        assert.equal(r.frames[0].bytes.length, bytes.length);
        assert.equal(r.frames[0].type, MessageType.RESPONSE);
        assert.equal(r.frames[0].status, status);
        for (let cut = 0; cut < bytes.length; cut++) {
          assert.equal(redis.decode(bytes.subarray(0, cut), { upstream: true }).frames.length, 0, `incomplete at ${cut}`);
        }
      });
    }

    it('deeply nested replies need no recursion', () => {
      const depth = 100_000;
      const input = Buffer.from('*1\r\n'.repeat(depth) + ':1\r\n');
      const r = redis.decode(input, { upstream: true });
      assert.equal(r.frames.length, 1);
      assert.equal(r.consumed, input.length);
    });
  });

  describe('malformed input', () => {
    const bad: Array<[name: string, input: string, upstream: boolean, status: number, message: RegExp]> = [
      ['array element without $', '*1\r\n:1\r\n', false, Status.PROTOCOL_ERROR, /expected '\$'/],
      ['negative bulk length', '*1\r\n$-5\r\n', false, Status.PROTOCOL_ERROR, /invalid bulk length/],
      ['non-numeric multibulk length', '*x\r\n', false, Status.PROTOCOL_ERROR, /invalid multibulk length/],
      ['multibulk length with a plus sign (redis-server rejects it)', '*+1\r\n$4\r\nPING\r\n', false, Status.PROTOCOL_ERROR, /invalid multibulk length/],
      ['multibulk length with a leading zero', '*01\r\n$4\r\nPING\r\n', false, Status.PROTOCOL_ERROR, /invalid multibulk length/],
      ['bulk length with a leading zero', '*1\r\n$04\r\nPING\r\n', false, Status.PROTOCOL_ERROR, /invalid bulk length/],
      // redis-server would never find the end of this line (strchr stops at NUL) and stall.
      ['NUL in an inline request', 'GET a\0b\r\n', false, Status.PROTOCOL_ERROR, /NUL byte in an inline request/],
      ['unterminated double quotes', 'GET "abc\r\n', false, Status.PROTOCOL_ERROR, /unbalanced quotes/],
      ['closing quote followed by a character', 'GET "a"b\r\n', false, Status.PROTOCOL_ERROR, /unbalanced quotes/],
      ['bulk above 512 MB', '*1\r\n$600000000\r\n', false, Status.FRAME_TOO_LARGE, /512 MB/],
      ['bulk without CRLF', '*1\r\n$1\r\nabc\r\n', false, Status.PROTOCOL_ERROR, /not terminated by CRLF/],
      ['inline line over 64 KiB', 'GET ' + 'k'.repeat(70_000), false, Status.PROTOCOL_ERROR, /too big inline request/],
      ['unknown reply type', '?what\r\n', true, Status.PROTOCOL_ERROR, /unknown RESP type/],
      ['reply with a broken bulk length', '$abc\r\n', true, Status.PROTOCOL_ERROR, /invalid bulk length/],
    ];
    for (const [name, input, upstream, status, message] of bad) {
      it(name, () => {
        const r = redis.decode(Buffer.from(input), { upstream });
        assert.equal(r.status, status);
        assert.match(r.error!, message);
      });
    }
  });

  it('local replies are -ERR lines without CR or LF in the message', () => {
    assert.equal(redis.localReply(Buffer.from(cmd('GET', 'k')), ErrorKind.ROUTE_NOT_FOUND, 'no route\r\nmatched').toString(), '-ERR no route  matched\r\n');
  });

  it('encode forwards requests unchanged', () => {
    const frame = Buffer.from(cmd('GET', 'k'));
    assert.equal(redis.encode(frame), frame);
  });
});
