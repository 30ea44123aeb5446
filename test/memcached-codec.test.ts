// The Memcached codec through the plugin-author harness: text and meta commands framed as
// memcached 1.6 reads them, binary packets checked as it checks them, quiet runs glued to the
// request that ends them, responses framed by the `expect` of their request, local replies.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CodecHarness, ErrorKind, FrameFlag, MessageType, ResponseStatus } from '../sdk/harness/codec-harness';
import { PLUGIN_DIR } from './helpers/paths';
import { binaryPackets, binaryRequest } from './helpers/memcached-server';

// Expect words (plugins/memcached/commands.ts).
const EXPECT = { LINE: 1, VALUES: 2, LIST: 3, META: 4, MN: 5, BINARY: 6 };
const FILE = join(PLUGIN_DIR, 'memcached.wasm');

const bin = (op: number, key = '', extras = Buffer.alloc(0), value = '', opaque = 1) => binaryRequest(op, { key, extras, value, opaque });
function binResponse(op: number, opts: { key?: string; value?: string; status?: number; opaque?: number } = {}): Buffer {
  const key = Buffer.from(opts.key ?? '');
  const value = Buffer.from(opts.value ?? '');
  const h = Buffer.alloc(24);
  h[0] = 0x81;
  h[1] = op;
  h.writeUInt16BE(key.length, 2);
  h.writeUInt16BE(opts.status ?? 0, 6);
  h.writeUInt32BE(key.length + value.length, 8);
  h.writeUInt32BE(opts.opaque ?? 1, 12);
  return Buffer.concat([h, key, value]);
}

describe('memcached codec (harness)', () => {
  let h: CodecHarness;
  beforeEach(async () => {
    h = await CodecHarness.load(FILE);
  });
  afterEach(() => h.close());

  it('declares order correlation and reads `expect` on pooled connections (ABI 1.3)', () => {
    assert.equal(h.descriptor.abiMinor, 3);
    assert.equal(h.descriptor.correlation, 'order');
    assert.equal(h.descriptor.expectResponses, true);
    assert.equal(h.descriptor.bindUpstream, false);
  });

  // request, command, key, expect, message type, flags that must be set
  const requests: Array<[string, string | Buffer, string, string | undefined, number, number, number]> = [
    ['get', 'get user:1\r\n', 'GET', 'user:1', EXPECT.VALUES, MessageType.REQUEST, FrameFlag.IDEMPOTENT],
    ['multiget: the first key', 'get a b c\r\n', 'GET', 'a', EXPECT.VALUES, MessageType.REQUEST, FrameFlag.IDEMPOTENT],
    ['gets with leading spaces and LF only', '  gets k\n', 'GETS', 'k', EXPECT.VALUES, MessageType.REQUEST, 0],
    ['gat: the key after exptime', 'gat 30 k1 k2\r\n', 'GAT', 'k1', EXPECT.VALUES, MessageType.REQUEST, 0],
    ['set', 'set k 1 0 5\r\nhello\r\n', 'SET', 'k', EXPECT.LINE, MessageType.REQUEST, 0],
    ['set noreply is one-way', 'set k 1 0 2 noreply\r\nhi\r\n', 'SET', 'k', EXPECT.LINE, MessageType.ONEWAY, 0],
    ['cas', 'cas k 0 -1 1 18446744073709551615\r\nx\r\n', 'CAS', 'k', EXPECT.LINE, MessageType.REQUEST, 0],
    ['incr', 'incr n 5\r\n', 'INCR', 'n', EXPECT.LINE, MessageType.REQUEST, 0],
    ['delete 0 noreply', 'delete k 0 noreply\r\n', 'DELETE', 'k', EXPECT.LINE, MessageType.ONEWAY, 0],
    ['touch', 'touch k 10\r\n', 'TOUCH', 'k', EXPECT.LINE, MessageType.REQUEST, 0],
    ['mg', 'mg k v f\r\n', 'MG', 'k', EXPECT.META, MessageType.REQUEST, 0],
    ['ms', 'ms k 3 T60\r\nabc\r\n', 'MS', 'k', EXPECT.META, MessageType.REQUEST, 0],
    ['a quiet run ends with mn', 'mg a v q\r\nmg b v q\r\nset c 0 0 1 noreply\r\nx\r\nmn\r\n', 'MG', 'a', EXPECT.MN, MessageType.REQUEST, 0],
    ['stats', 'stats slabs\r\n', 'STATS', undefined, EXPECT.LIST, MessageType.REQUEST, 0],
    ['version', 'version\r\n', 'VERSION', undefined, EXPECT.LINE, MessageType.REQUEST, FrameFlag.IDEMPOTENT],
    ['flush_all noreply', 'flush_all noreply\r\n', 'FLUSH_ALL', undefined, EXPECT.LINE, MessageType.ONEWAY, 0],
    ['quit goes on the client\'s own connection', 'quit\r\n', 'QUIT', undefined, EXPECT.LINE, MessageType.ONEWAY, FrameFlag.CONNECTION_SCOPED | FrameFlag.DRAIN_CLOSE],
    ['binary get', bin(0x00, 'bk'), 'GET', 'bk', EXPECT.BINARY, MessageType.REQUEST, FrameFlag.IDEMPOTENT | FrameFlag.CONNECTION_SCOPED],
    ['binary quiet run', Buffer.concat([bin(0x0d, 'a'), bin(0x0d, 'b'), bin(0x0a)]), 'GETKQ', 'a', EXPECT.BINARY, MessageType.REQUEST, FrameFlag.IDEMPOTENT],
    ['binary set', bin(0x01, 'k', Buffer.alloc(8), 'v'), 'SET', 'k', EXPECT.BINARY, MessageType.REQUEST, 0],
    ['binary quitq', bin(0x17), 'QUITQ', undefined, EXPECT.BINARY, MessageType.ONEWAY, FrameFlag.DRAIN_CLOSE],
    ['binary sasl', bin(0x21, 'PLAIN', undefined, '\0u\0p'), 'SASL_AUTH', 'PLAIN', EXPECT.BINARY, MessageType.REQUEST, FrameFlag.CONNECTION_SCOPED],
  ];
  for (const [name, input, command, key, expect, type, flags] of requests) {
    it(`request: ${name}`, () => {
      const bytes = Buffer.from(input);
      const r = h.decode(bytes);
      assert.equal(r.status, 0, r.error);
      assert.equal(r.frames.length, 1);
      const [f] = r.frames;
      assert.equal(f.bytes.length, bytes.length, 'one frame covers it all');
      assert.equal(f.get('command'), command);
      assert.equal(f.get('key'), key);
      assert.equal(f.expect, expect);
      assert.equal(f.type, type);
      assert.equal(f.flags & flags, flags);
      // Split anywhere, it frames the same.
      for (const cut of [1, Math.floor(bytes.length / 2), bytes.length - 1]) {
        const again = h.decodeSplit(bytes, cut);
        assert.equal(again.length, 1, `cut at ${cut}`);
        assert.equal(again[0].bytes.length, bytes.length);
      }
    });
  }

  it('pipelined text commands are separate frames; a storage command waits for its data block', () => {
    const r = h.decode(Buffer.from('get a\r\nset b 0 0 10\r\n01234'));
    assert.equal(r.frames.length, 1);
    assert.equal(r.consumed, 7);
    assert.equal(r.need, 7 + 'set b 0 0 10\r\n'.length + 12);
  });

  it('a data block past 2 GiB asks for the most a frame can need, so max_frame_size refuses it at once', () => {
    const r = h.decode(Buffer.from('set k 0 0 2147483645\r\n'));
    assert.equal(r.status, 0);
    assert.equal(r.need, 0x7fff_ffff);
  });

  it('a run of quiet meta commands waits for its mn', () => {
    const r = h.decode(Buffer.from('mg a v q\r\nmg b v q\r\n'));
    assert.equal(r.frames.length, 0);
    assert.equal(r.status, 0);
  });

  const refused: Array<[string, string | Buffer, RegExp]> = [
    ['an unknown command', 'frob k\r\n', /unknown command 'frob'/],
    ['a tab is not a separator', 'get\tk\r\n', /unknown command/],
    ['an empty line', '\r\n', /empty command line/],
    ['a NUL in a line', 'get a\0b\r\n', /NUL/],
    ['a 251-byte key', `get ${'k'.repeat(251)}\r\n`, /key longer than 250/],
    ['a long key past the 24th token of a multiget', `get ${'a '.repeat(30)}${'k'.repeat(251)}\r\n`, /key longer than 250/],
    ['get without a key', 'get\r\n', /no key/],
    ['set with a negative length', 'set k 0 0 -1\r\n', /bad data length|bad command line/],
    ['set with flags over 32 bits', 'set k 4294967296 0 1\r\nx\r\n', /bad command line format/],
    ['set with a bad data chunk', 'set k 0 0 1\r\nxyz\r\n', /bad data chunk/],
    ['set with too many arguments', 'set k 0 0 1 noreply extra\r\nx\r\n', /wrong number of arguments/],
    ['cas without its unique', 'cas k 0 0 1\r\nx\r\n', /wrong number of arguments/],
    ['delete with a hold time', 'delete k 5\r\n', /Usage: delete/],
    ['incr with a word', 'incr n five\r\n', /invalid numeric delta/],
    ['ms without a length', 'ms k\r\n', /bad command line format/],
    ['ms with 20 tokens', `ms k 1 ${'T1 '.repeat(17)}\r\nx\r\n`, /bad command line format/],
    ['a non-get line over 2048 bytes', `set ${'k'.repeat(2100)} 0 0 1\r\nx\r\n`, /command line too long/],
    ['an unfinished non-get line over 2048 bytes', `touch ${'k'.repeat(2100)}`, /command line too long/],
    ['watch', 'watch\r\n', /watch turns the connection/],
    ['noreply on lru_crawler', 'lru_crawler crawl all noreply\r\n', /noreply is not supported/],
    ['quit inside a quiet run', 'mg a q\r\nquit\r\nmn\r\n', /quit or shutdown inside a run/],
    ['binary: bad magic after a quiet packet', Buffer.concat([bin(0x0d, 'a'), Buffer.from([0x42])]), /bad magic/],
    ['binary: key and extras longer than the body', (() => { const b = bin(0x00, 'k'); b.writeUInt32BE(0, 8); return b; })(), /longer than the body/],
    ['binary: a set without extras', bin(0x01, 'k', Buffer.alloc(0), 'v'), /malformed SET packet/],
    ['binary: a get with a value', bin(0x00, 'k', Buffer.alloc(0), 'v'), /malformed GET packet/],
    ['binary: a 251-byte key', bin(0x00, 'k'.repeat(251)), /key longer than 250/],
    ['binary: noop with a body', bin(0x0a, '', Buffer.alloc(0), 'x'), /malformed NOOP packet/],
    // A run is decoded again from its start as it grows: an endless one must not cost quadratic time.
    ['binary: a quiet run of 4097 requests', Buffer.concat(Array.from({ length: 4097 }, () => bin(0x09, 'k'))), /quiet requests longer than 4096/],
    ['a meta quiet run of 4097 requests', 'mg k q\r\n'.repeat(4097), /quiet requests longer than 4096/],
    ['a meta quiet run over 1 MiB', `mg ${'k'.repeat(250)} q\r\n`.repeat(4100).slice(0, 1_100_000), /quiet requests longer than 4096 requests \(or 1 MiB/],
  ];
  for (const [name, input, message] of refused) {
    it(`refuses ${name}`, () => {
      const r = h.decode(Buffer.from(input));
      assert.ok(r.status < 0, `status ${r.status}`);
      assert.match(r.error ?? '', message);
    });
  }

  it('a connection keeps the protocol it began with', () => {
    assert.equal(h.decode(Buffer.from('version\r\n')).status, 0);
    const r = h.decode(bin(0x0b));
    assert.ok(r.status < 0);
    assert.match(r.error ?? '', /began text/);
  });

  // response bytes, expect, frames they hold, error status
  const responses: Array<[string, string | Buffer, number, number, boolean]> = [
    ['a hit', 'VALUE k 0 5\r\nhello\r\nEND\r\n', EXPECT.VALUES, 1, false],
    ['a multiget with END inside a value', 'VALUE a 0 5\r\nEND\r\n\r\nVALUE b 0 1 99\r\nx\r\nEND\r\n', EXPECT.VALUES, 1, false],
    ['a miss', 'END\r\n', EXPECT.VALUES, 1, false],
    ['an error ends a retrieval', 'VALUE a 0 1\r\nx\r\nSERVER_ERROR out of memory writing get response\r\n', EXPECT.VALUES, 1, true],
    ['pipelined lines', 'STORED\r\nNOT_STORED\r\n', EXPECT.LINE, 1, false],
    ['stats', 'STAT pid 1\r\nSTAT uptime 3\r\nEND\r\n', EXPECT.LIST, 1, false],
    ['stats reset', 'RESET\r\n', EXPECT.LIST, 1, false],
    ['lru_crawler mgdump', 'mg a\r\nmg b\r\nEN\r\n', EXPECT.LIST, 1, false],
    ['a meta value', 'VA 4 f0\r\nMN\r\n\r\n', EXPECT.META, 1, false],
    ['a run up to MN, VALUE data skipped', 'VA 2 ka\r\nMN\r\nCLIENT_ERROR bad\r\nHD\r\nMN\r\n', EXPECT.MN, 1, true],
    ['ERROR', 'ERROR\r\n', EXPECT.LINE, 1, true],
    ['binary: quiet answers, then the run\'s end', Buffer.concat([binResponse(0x0d, { key: 'a', value: 'x' }), binResponse(0x0a, { opaque: 4 })]), EXPECT.BINARY, 1, false],
    ['binary: stats up to the empty one', Buffer.concat([binResponse(0x10, { key: 'pid', value: '1' }), binResponse(0x10)]), EXPECT.BINARY, 1, false],
    ['binary: a miss is an answer', binResponse(0x00, { status: 1, value: 'Not found' }), EXPECT.BINARY, 1, false],
    ['binary: unknown command is an error', binResponse(0x30, { status: 0x81 }), EXPECT.BINARY, 1, true],
  ];
  for (const [name, input, expect, frames, isError] of responses) {
    it(`response: ${name}`, () => {
      const bytes = Buffer.from(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
      const r = h.decode(bytes, { upstream: true, expect });
      assert.equal(r.status, 0, r.error);
      assert.equal(r.frames.length, frames);
      assert.equal(r.frames[0].type, MessageType.RESPONSE);
      assert.equal(r.frames[0].status, isError ? ResponseStatus.ERROR : ResponseStatus.OK);
      if (expect !== EXPECT.LINE) assert.equal(r.consumed, bytes.length);
    });
  }

  it('a response of the wrong shape for its request closes the upstream connection', () => {
    for (const [bytes, expect] of [['VALUE a 0 1\r\nx\r\nSTORED\r\n', EXPECT.VALUES], ['STORED\r\n', EXPECT.BINARY]] as const) {
      const r = h.decode(Buffer.from(bytes), { upstream: true, expect });
      assert.ok(r.status < 0, `${bytes}: ${r.status}`);
    }
    assert.ok(h.decode(binResponse(0x00), { upstream: true, expect: EXPECT.LINE }).status < 0);
  });

  it('local replies: CLIENT_ERROR or SERVER_ERROR, MN after a run, a binary error echoing opcode and opaque', () => {
    assert.equal(h.localReply(Buffer.from('get k\r\n'), ErrorKind.NO_HEALTHY_UPSTREAM, 'no upstream\r\nhere').toString(), 'SERVER_ERROR no upstream  here\r\n');
    assert.equal(h.localReply(null, ErrorKind.PROTOCOL_ERROR, 'bad').toString(), 'CLIENT_ERROR bad\r\n');
    assert.equal(h.localReply(Buffer.from('mg a q\r\nmn\r\n'), ErrorKind.TIMEOUT, 't').toString(), 'SERVER_ERROR t\r\nMN\r\n');
    const reply = h.localReply(Buffer.concat([bin(0x0d, 'a', undefined, '', 7), bin(0x0a, '', undefined, '', 9)]), ErrorKind.OVER_LIMIT, 'busy');
    const { packets, complete } = binaryPackets(reply);
    assert.ok(complete);
    assert.deepEqual(packets.map((p) => [p.opcode, p.status, p.opaque, p.value]), [[0x0a, 0x85, 9, 'busy']]);
  });

  it('refuses a codec_config protocol it does not know, naming it', async () => {
    await assert.rejects(CodecHarness.load(FILE, { config: { protocol: 'udp' } }), /protocol must be "auto", "text" or "binary", not "udp"/);
    const textOnly = await CodecHarness.load(FILE, { config: { protocol: 'text' } });
    try {
      assert.match(textOnly.decode(bin(0x0b)).error ?? '', /speaks the text protocol \(codec_config.protocol\)/);
    } finally {
      textOnly.close();
    }
    const binaryOnly = await CodecHarness.load(FILE, { config: { protocol: 'binary' } });
    try {
      const [f] = binaryOnly.decode(bin(0x0b)).frames;
      assert.equal(f.flags & FrameFlag.CONNECTION_SCOPED, 0, 'binary shares the pool when the listener speaks binary');
    } finally {
      binaryOnly.close();
    }
  });
});
