// Valid frames for each codec and direction, made by the real peers' encoders where one exists
// (hessian.js for Dubbo, the thrift library's protocol classes for Thrift), as seeds to mutate.

import { encodeHeartbeat, encodeRequest, encodeResponse, sayHello } from '../helpers/dubbo-peers';

/* eslint-disable @typescript-eslint/no-require-imports */
const thrift = require('thrift');

export interface Corpus {
  requests: Buffer[];
  responses: Buffer[];
}

const resp = (...args: string[]) => `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('');

export function redisCorpus(): Corpus {
  return {
    requests: [
      resp('GET', 'user:1'), resp('SET', 'k', 'v'.repeat(300)), resp('MSET', 'a', '1', 'b', '2'), 'PING\r\n', 'get cache:x\r\n',
      resp('EVAL', 'return 1', '1', 'lock'), resp('XREAD', 'BLOCK', '0', 'STREAMS', 's', '$'), resp('SELECT', '2'), '\r\n' + resp('DEL', 'x'),
      '*0\r\n' + resp('INCR', 'n'), resp('HSET', 'h', 'f', 'v'),
    ].map((s) => Buffer.from(s)),
    responses: [
      '+OK\r\n', '-ERR bad\r\n', ':42\r\n', '$5\r\nhello\r\n', '$-1\r\n', '*2\r\n$1\r\na\r\n:1\r\n', '*-1\r\n', '%1\r\n+k\r\n*1\r\n_\r\n',
      '|1\r\n+a\r\n+b\r\n#t\r\n', '>2\r\n+message\r\n$2\r\nhi\r\n', '=7\r\ntxt:abc\r\n', ',1.5\r\n', '(123\r\n', '!3\r\nERR\r\n', '~1\r\n$0\r\n\r\n',
    ].map((s) => Buffer.from(s)),
  };
}

const ATTACHMENTS = { server: 'v1', dubbo: '2.0.2' };

function dubboResponse(id: bigint, flag: number, value: unknown, status = 20): Buffer {
  return encodeResponse(id, flag, value, flag >= 3 ? ATTACHMENTS : null, status);
}

export function dubboCorpus(): Corpus {
  const user = { $class: 'com.example.User', $: { name: 'Zoë', age: 3, tags: ['a'], friends: [{ $class: 'com.example.User', $: { name: 'b', age: 1, tags: [], friends: [] } }] } };
  return {
    requests: [
      encodeRequest(1n, sayHello('ana', { batchJob: 'true', group: 'g' })),
      encodeRequest(2n, { path: 'com.x.S', version: '1.0', method: 'save', desc: 'Lcom/example/User;Ljava/util/List;Ljava/util/Map;[BJD', args: [user, [1, 'x', null, 2.5], { k: 1 }, Buffer.alloc(40, 1), 5, 1.25] }),
      encodeRequest(3n, sayHello('x'.repeat(2000))),
      encodeRequest(4n, sayHello('one-way'), false),
      encodeHeartbeat(5n),
    ],
    responses: [
      dubboResponse(1n, 4, 'hello'), dubboResponse(2n, 5, null), dubboResponse(3n, 1, [1, 2, { a: 'b' }]),
      dubboResponse(4n, 3, { $class: 'java.lang.RuntimeException', $: { detailMessage: 'boom' } }), dubboResponse(5n, 0, 'not found', 60),
      dubboResponse(6n, 4, user),
    ],
  };
}

function thriftMessage(protocol: 'binary' | 'compact', framed: boolean, name: string, type: number, seqid: number, body: (p: any) => void): Buffer { // eslint-disable-line @typescript-eslint/no-explicit-any
  let out: Buffer = Buffer.alloc(0);
  const transport = new (framed ? thrift.TFramedTransport : thrift.TBufferedTransport)(undefined, (buf: Buffer) => { out = Buffer.from(buf); });
  const p = new (protocol === 'binary' ? thrift.TBinaryProtocol : thrift.TCompactProtocol)(transport);
  p.writeMessageBegin(name, type, seqid);
  p.writeStructBegin('s');
  body(p);
  p.writeFieldStop();
  p.writeStructEnd();
  p.writeMessageEnd();
  transport.flush();
  return out;
}

export function thriftCorpus(): Corpus {
  const T = thrift.Thrift.Type;
  const requests: Buffer[] = [];
  const responses: Buffer[] = [];
  for (const protocol of ['binary', 'compact'] as const) {
    for (const framed of [true, false]) {
      requests.push(thriftMessage(protocol, framed, 'echo', 1, 7, (p) => {
        p.writeFieldBegin('msg', T.STRING, 1); p.writeString('hello'); p.writeFieldEnd();
        p.writeFieldBegin('tags', T.MAP, 2); p.writeMapBegin(T.STRING, T.STRING, 1); p.writeString('k'); p.writeString('v'); p.writeMapEnd(); p.writeFieldEnd();
        p.writeFieldBegin('nums', T.LIST, 3); p.writeListBegin(T.I64, 2); p.writeI64(1); p.writeI64(-2); p.writeListEnd(); p.writeFieldEnd();
        p.writeFieldBegin('flag', T.BOOL, 4); p.writeBool(true); p.writeFieldEnd();
        p.writeFieldBegin('inner', T.STRUCT, 20); p.writeStructBegin('i'); p.writeFieldBegin('d', T.DOUBLE, 1); p.writeDouble(2.5); p.writeFieldEnd(); p.writeFieldStop(); p.writeStructEnd(); p.writeFieldEnd();
      }));
      requests.push(thriftMessage(protocol, framed, 'Calc:add', 1, 8, (p) => {
        p.writeFieldBegin('a', T.I32, 1); p.writeI32(2); p.writeFieldEnd();
        p.writeFieldBegin('b', T.I32, 2); p.writeI32(3); p.writeFieldEnd();
      }));
      requests.push(thriftMessage(protocol, framed, 'notify', 4, 9, (p) => { p.writeFieldBegin('m', T.STRING, 1); p.writeString('x'); p.writeFieldEnd(); }));
      responses.push(thriftMessage(protocol, framed, 'echo', 2, 7, (p) => { p.writeFieldBegin('success', T.STRING, 0); p.writeString('ok'); p.writeFieldEnd(); }));
      responses.push(thriftMessage(protocol, framed, 'fail', 2, 10, (p) => {
        p.writeFieldBegin('oops', T.STRUCT, 1); p.writeStructBegin('Oops'); p.writeFieldBegin('why', T.STRING, 1); p.writeString('no'); p.writeFieldEnd(); p.writeFieldStop(); p.writeStructEnd(); p.writeFieldEnd();
      }));
      responses.push(thriftMessage(protocol, framed, 'who', 3, 11, (p) => { p.writeFieldBegin('message', T.STRING, 1); p.writeString('x'); p.writeFieldEnd(); }));
    }
  }
  return { requests, responses };
}

/** A binary-protocol packet (request magic 0x80, response 0x81). */
function mcPacket(magic: number, opcode: number, key = '', extras = Buffer.alloc(0), value = '', opaque = 0, status = 0): Buffer {
  const h = Buffer.alloc(24);
  h[0] = magic;
  h[1] = opcode;
  h.writeUInt16BE(Buffer.byteLength(key), 2);
  h[4] = extras.length;
  h.writeUInt16BE(status, 6);
  h.writeUInt32BE(extras.length + Buffer.byteLength(key) + Buffer.byteLength(value), 8);
  h.writeUInt32BE(opaque, 12);
  return Buffer.concat([h, extras, Buffer.from(key), Buffer.from(value)]);
}

export function memcachedCorpus(): Corpus {
  const flags8 = Buffer.alloc(8);
  const incr20 = Buffer.alloc(20);
  const req = (op: number, key = '', extras = Buffer.alloc(0), value = '', opaque = 1) => mcPacket(0x80, op, key, extras, value, opaque);
  const res = (op: number, key = '', extras = Buffer.alloc(0), value = '', opaque = 1, status = 0) => mcPacket(0x81, op, key, extras, value, opaque, status);
  return {
    requests: [
      'get user:1\r\n', 'gets a b c\r\n', 'gat 30 k1 k2\r\n', 'set k 0 0 5\r\nhello\r\n', 'add k 7 60 2 noreply\r\nhi\r\n', 'cas k 0 0 1 42\r\nx\r\n',
      'incr n 5\r\n', 'decr n 1 noreply\r\n', 'delete k\r\n', 'delete k 0 noreply\r\n', 'touch k 10\r\n', 'mg k v f t\r\n', 'ms k 3 T60\r\nabc\r\n',
      'mg a v q\r\nmg b v q k\r\nmn\r\n', 'md k q\r\nmn\r\n', 'ma n D5\r\n', 'me k\r\n', 'stats\r\n', 'stats slabs\r\n', 'version\r\n', 'verbosity 1\r\n',
      'flush_all 0 noreply\r\n', 'lru_crawler metadump all\r\n', 'quit\r\n', 'set k 0 0 2\nhi\r\n', '   get spaced\r\n',
      req(0x00, 'k'), req(0x01, 'k', flags8, 'value'), req(0x0d, 'a', undefined, '', 2), Buffer.concat([req(0x0d, 'a', undefined, '', 2), req(0x0d, 'b', undefined, '', 3), req(0x0a, '', undefined, '', 4)]),
      req(0x05, 'n', incr20), req(0x10), req(0x10, 'slabs'), req(0x0b), req(0x1c, 'k', Buffer.alloc(4)), Buffer.concat([req(0x11, 'k', flags8, 'v'), req(0x0a)]), req(0x17), req(0x21, 'PLAIN', undefined, '\0u\0p'),
    ].map((s) => (typeof s === 'string' ? Buffer.from(s) : s)),
    responses: [
      'STORED\r\n', 'END\r\n', 'VALUE k 0 5\r\nhello\r\nEND\r\n', 'VALUE a 0 1 17\r\nx\r\nVALUE b 3 2 18\r\nyz\r\nEND\r\n', 'VA 3 f0\r\nabc\r\n', 'HD\r\n', 'EN\r\n',
      'VA 1 ka\r\nx\r\nMN\r\n', 'MN\r\n', 'STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n', 'VERSION 1.6.18\r\n', '42\r\n', 'ERROR\r\n', 'CLIENT_ERROR bad data chunk\r\n',
      'SERVER_ERROR out of memory\r\n', 'key=a exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\nEND\r\n', 'NOT_FOUND\r\n', 'OK\r\n',
      res(0x00, '', Buffer.alloc(4), 'value'), res(0x00, '', undefined, 'Not found', 1, 1), res(0x01), Buffer.concat([res(0x0d, 'a', Buffer.alloc(4), 'x', 2), res(0x0a, '', undefined, '', 4)]),
      Buffer.concat([res(0x10, 'pid', undefined, '1'), res(0x10, 'uptime', undefined, '9'), res(0x10)]), res(0x0b, '', undefined, '1.6.18'), res(0x05, '', undefined, '\0\0\0\0\0\0\0\x07'), res(0x30, '', undefined, 'Unknown command', 1, 0x81),
    ].map((s) => (typeof s === 'string' ? Buffer.from(s, 'latin1') : s)),
  };
}
