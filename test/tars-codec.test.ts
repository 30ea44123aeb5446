// The TARS codec through the harness, on packets encoded by the @tars/rpc framework's own
// RequestF classes: metadata from requests (servant, func, context), ids, one-way calls, TUP
// packets, responses and their result codes, splits, malformed packets, context mutations that the
// framework's decoder reads back, request-id rewrites past the int8/int16 widths, local replies.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CodecHarness, Mutation } from '../sdk/harness/codec-harness';
import { ErrorKind, MessageType, ResponseStatus, Status } from '../runtime/wasm/abi';
import { PLUGIN_DIR } from './helpers/paths';
import { SERVANT, decodeRequest, decodeResponse, encodeRequest, encodeResponse, stringArg } from './helpers/tars-peers';

/* eslint-disable @typescript-eslint/no-require-imports */
const TarsStream = require('@tars/stream');

/** Replaces the packet's length with `len`. */
function withLength(frame: Buffer, len: number): Buffer {
  const b = Buffer.from(frame);
  b.writeUInt32BE(len, 0);
  return b;
}

/** A packet whose body is `body` (raw TARS fields after the length). */
function raw(body: number[]): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.writeUInt32BE(b.length, 0);
  Buffer.from(body).copy(b, 4);
  return b;
}

describe('tars codec', () => {
  let tars: CodecHarness;
  before(async () => { tars = await CodecHarness.load(join(PLUGIN_DIR, 'tars.wasm')); });
  after(() => tars.close());

  it('declares request-id correlation', () => {
    assert.equal(tars.descriptor.name, 'tars');
    assert.equal(tars.descriptor.correlation, 'request_id');
  });

  const requests: Array<{ name: string; fields: Parameters<typeof encodeRequest>[0]; type: number; meta: Record<string, string> }> = [
    { name: 'a call', fields: { id: 7, func: 'echo' }, type: MessageType.REQUEST, meta: { servant: SERVANT, func: 'echo', service: SERVANT, method: 'echo' } },
    { name: 'a one-way call', fields: { id: 8, func: 'note', oneway: true }, type: MessageType.ONEWAY, meta: { func: 'note' } },
    { name: 'context pairs', fields: { id: 9, context: { tenant: 'gold', 'x-trace': 'abc' } }, type: MessageType.REQUEST, meta: { tenant: 'gold', 'x-trace': 'abc' } },
    { name: 'a TUP call', fields: { id: 10, version: 3, func: 'getUsr' }, type: MessageType.REQUEST, meta: { func: 'getUsr' } },
    { name: 'a long servant name', fields: { id: 11, servant: 'S'.repeat(300) }, type: MessageType.REQUEST, meta: { servant: 'S'.repeat(300) } },
    { name: 'tars_ping', fields: { id: 12, func: 'tars_ping', body: Buffer.alloc(0) }, type: MessageType.REQUEST, meta: { func: 'tars_ping' } },
    { name: 'a large body', fields: { id: 13, body: stringArg('z'.repeat(100_000)) }, type: MessageType.REQUEST, meta: { func: 'echo' } },
  ];
  for (const c of requests) {
    it(`reads ${c.name}`, () => {
      const frame = encodeRequest(c.fields);
      const r = tars.decode(frame);
      assert.equal(r.consumed, frame.length, r.error);
      const [f] = r.frames;
      assert.equal(f.type, c.type);
      assert.equal(f.requestId, BigInt(c.fields.id));
      for (const [k, v] of Object.entries(c.meta)) assert.equal(f.get(k), v, k);
      for (const cut of [1, 3, 4, 5, Math.floor(frame.length / 2), frame.length - 1]) {
        const split = tars.decodeSplit(frame, cut);
        assert.equal(split.length, 1, `cut at ${cut}`);
        assert.equal(split[0].get('func'), f.get('func'));
      }
    });
  }

  it('reads ids of every width, negative ones included', () => {
    for (const id of [0, 1, -1, 127, 128, 32767, 32768, 2 ** 31 - 1, -(2 ** 31)]) {
      const [f] = tars.decode(encodeRequest({ id })).frames;
      assert.equal(f.requestId, BigInt(id >>> 0), String(id));
    }
  });

  it('makes the first 64 context entries metadata, and forwards and rewrites all of them', () => {
    const context = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, `v${i}`]));
    const frame = encodeRequest({ id: 1, context });
    const [f] = tars.decode(frame).frames;
    assert.equal(f.get('k63'), 'v63');
    assert.equal(f.get('k64'), undefined);
    const out = decodeRequest(tars.encode(frame, new Mutation().set('k999', 'new')));
    assert.equal(Object.keys(out.context).length, 1000);
    assert.equal(out.context.k999, 'new');
    assert.equal(out.context.k500, 'v500');
  });

  it('decodes back-to-back packets one at a time', () => {
    const two = Buffer.concat([encodeRequest({ id: 1, func: 'a' }), encodeRequest({ id: 2, func: 'b' })]);
    const r = tars.decode(two);
    assert.deepEqual(r.frames.map((f) => f.get('func')), ['a', 'b']);
  });

  const responses: Array<{ name: string; frame: Buffer; id: number; status: number; meta?: Record<string, string> }> = [
    { name: 'a success', frame: encodeResponse({ id: 5, body: stringArg('ok') }), id: 5, status: ResponseStatus.OK },
    { name: 'an error code', frame: encodeResponse({ id: 6, ret: -3, desc: 'no func' }), id: 6, status: ResponseStatus.ERROR },
    { name: 'a response context', frame: encodeResponse({ id: 7, context: { shard: '3' } }), id: 7, status: ResponseStatus.OK, meta: { shard: '3' } },
    { name: 'a TUP success', frame: encodeRequest({ id: 8, version: 3, status: { STATUS_RESULT_CODE: '0' } }), id: 8, status: ResponseStatus.OK },
    { name: 'a TUP failure', frame: encodeRequest({ id: 9, version: 2, status: { STATUS_RESULT_CODE: '-7', STATUS_RESULT_DESC: 'timeout' } }), id: 9, status: ResponseStatus.ERROR },
  ];
  for (const c of responses) {
    it(`reads ${c.name} from upstream`, () => {
      const r = tars.decode(c.frame, { upstream: true });
      assert.equal(r.consumed, c.frame.length, r.error);
      const [f] = r.frames;
      assert.equal(f.type, MessageType.RESPONSE);
      assert.equal(f.requestId, BigInt(c.id));
      assert.equal(f.status, c.status);
      for (const [k, v] of Object.entries(c.meta ?? {})) assert.equal(f.get(k), v);
    });
  }

  const good = encodeRequest({ id: 3 });
  const refused: Array<{ name: string; frame: Buffer; error: RegExp; upstream?: boolean }> = [
    { name: 'a length below a packet', frame: withLength(good, 2), error: /below the smallest packet/ },
    { name: 'a length of 4', frame: raw([]), error: /below the smallest packet/ },
    { name: 'no request id', frame: raw([0x10, 0x01, 0x56, 0x01, 0x61, 0x66, 0x01, 0x62]), error: /iRequestId is missing/ },
    { name: 'no servant', frame: raw([0x10, 0x01, 0x40, 0x05, 0x66, 0x01, 0x62]), error: /sServantName/ },
    { name: 'a servant that is an int', frame: raw([0x10, 0x01, 0x40, 0x05, 0x50, 0x01, 0x66, 0x01, 0x62]), error: /not a string/ },
    { name: 'a string past the end', frame: raw([0x10, 0x01, 0x40, 0x05, 0x56, 0x40, 0x61]), error: /past the packet's end/ },
    { name: 'fields out of order', frame: raw([0x40, 0x05, 0x10, 0x01]), error: /after field/ },
    { name: 'an unknown type', frame: raw([0x10, 0x01, 0x4e]), error: /unknown field type 14/ },
    { name: 'a map size past the end', frame: raw([0x10, 0x01, 0x98, 0x02, 0x7f, 0xff, 0xff, 0xff]), error: /past the packet's end/ },
    { name: 'a negative list size', frame: raw([0x10, 0x01, 0x99, 0x00, 0xff]), error: /size -1/ },
    { name: 'deep nesting', frame: raw([0x10, 0x01, 0xba, ...Array(40).fill(0x0a), ...Array(40).fill(0x0b)]), error: /nested deeper/ },
    { name: 'a context that is not a map of strings', frame: raw([0x10, 0x01, 0x40, 0x05, 0x56, 0x01, 0x61, 0x66, 0x01, 0x62, 0x98, 0x00, 0x01, 0x00, 0x01, 0x10, 0x02]), error: /map<string, string>/ },
    { name: 'an id wider than an int', frame: raw([0x10, 0x01, 0x43, 0, 0, 0, 1, 0, 0, 0, 0, 0x56, 0x01, 0x61, 0x66, 0x01, 0x62]), error: /int range/ },
    { name: 'a response without id', frame: raw([0x10, 0x01, 0x50, 0x00]), error: /iRequestId is missing/, upstream: true },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}`, () => {
      const r = tars.decode(c.frame, { upstream: c.upstream });
      assert.equal(r.status, Status.PROTOCOL_ERROR, `status ${r.status}`);
      assert.match(r.error ?? '', c.error);
    });
  }

  it('asks for the whole of a declared length, so max_frame_size can refuse it before it arrives', () => {
    const r = tars.decode(withLength(good, 0x7fff_fff0).subarray(0, 10));
    assert.equal(r.status, 0);
    assert.equal(r.need, 0x7fff_fff0);
    const huge = tars.decode(withLength(good, 0xffff_fff0).subarray(0, 10));
    assert.equal(huge.need, 0x7fff_ffff);
  });

  it('writes context mutations that the framework reads back, keeping the other fields', () => {
    const frame = encodeRequest({ id: 4, context: { keep: '1', replace: 'old', drop: 'x' }, status: { s: 'v' }, timeout: 3000 });
    const m = new Mutation().set('replace', 'new').set('added', 'yes').delete('drop');
    const out = decodeRequest(tars.encode(frame, m));
    assert.deepEqual(out.context, { keep: '1', replace: 'new', added: 'yes' });
    assert.deepEqual(out.status, { s: 'v' });
    assert.equal(out.iRequestId, 4);
    assert.equal(out.iTimeout, 3000);
    assert.equal(out.sFuncName, 'echo');
    assert.equal(new TarsStream.TarsInputStream(new TarsStream.BinBuffer(out.body)).readString(1, true, ''), 'hi');
  });

  it('rewrites request ids of any width both ways', () => {
    for (const [from, to] of [[1, 70_000], [70_000, 1], [5, 0xffff_fff0], [-1, 0]]) {
      const req = decodeRequest(tars.encode(encodeRequest({ id: from, context: { a: 'b' } }), new Mutation().setRequestId(BigInt(to))));
      assert.equal(req.iRequestId, to | 0, `${from} → ${to}`);
      assert.deepEqual(req.context, { a: 'b' });
      const rsp = decodeResponse(tars.encode(encodeResponse({ id: from, body: stringArg('r') }), new Mutation().setRequestId(BigInt(to)), { upstream: true, type: MessageType.RESPONSE }));
      assert.equal(rsp.iRequestId, to | 0);
      assert.equal(rsp.body.length, stringArg('r').length);
    }
  });

  it('writes response mutations into the response context', () => {
    const out = decodeResponse(tars.encode(encodeResponse({ id: 2, context: { a: '1' } }), new Mutation().set('b', '2'), { upstream: true, type: MessageType.RESPONSE }));
    assert.deepEqual(out.context, { a: '1', b: '2' });
  });

  const replies: Array<{ kind: number; code: number }> = [
    { kind: ErrorKind.ROUTE_NOT_FOUND, code: -4 },
    { kind: ErrorKind.TIMEOUT, code: -7 },
    { kind: ErrorKind.OVER_LIMIT, code: -9 },
    { kind: ErrorKind.NO_HEALTHY_UPSTREAM, code: -10 },
    { kind: ErrorKind.CONNECT_FAILURE, code: -8 },
    { kind: ErrorKind.PROTOCOL_ERROR, code: -1 },
    { kind: ErrorKind.PERMISSION_DENIED, code: -99 },
  ];
  for (const c of replies) {
    it(`answers a local failure of kind ${c.kind} with result code ${c.code}`, () => {
      const out = decodeResponse(tars.localReply(encodeRequest({ id: 77 }), c.kind as never, 'meltemi: why'));
      assert.equal(out.iRequestId, 77);
      assert.equal(out.iRet, c.code);
      assert.equal(out.sResultDesc, 'meltemi: why');
    });
  }

  it('answers a TUP request in TUP, its result in the status map', () => {
    const reply = tars.localReply(encodeRequest({ id: 78, version: 3, func: 'f' }), ErrorKind.TIMEOUT, 'late');
    const out = decodeRequest(reply);
    assert.equal(out.iRequestId, 78);
    assert.equal(out.sFuncName, 'f');
    assert.deepEqual(out.status, { STATUS_RESULT_CODE: '-7', STATUS_RESULT_DESC: 'late' });
    const tup = new TarsStream.UniAttribute();
    tup.tupVersion = 3;
    tup.decode(new TarsStream.BinBuffer(out.body)); // the framework's client decodes it without throwing
  });

  it('answers garbage with id 0', () => {
    const out = decodeResponse(tars.localReply(Buffer.from('not tars at all'), ErrorKind.PROTOCOL_ERROR, 'bad'));
    assert.equal(out.iRequestId, 0);
    assert.equal(out.iRet, -1);
  });
});
