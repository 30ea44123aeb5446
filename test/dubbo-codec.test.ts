// The Dubbo codec through the harness, on frames produced by hessian.js the way Dubbo 2.x
// produces them: invocation metadata and attachments after arbitrary Java-object arguments,
// responses, heartbeats, one-way calls, splits at every byte, malformed bodies, attachment
// mutation that a hessian decoder reads back, and local replies.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CodecHarness, Mutation } from '../sdk/harness/codec-harness';
import { ErrorKind, MessageType, ResponseStatus, Status } from '../runtime/wasm/abi';
import { encodeHeartbeat, encodeRequest, encodeResponse as response, Invocation, readFrames, sayHello } from './helpers/dubbo-peers';
import { PLUGIN_DIR } from './helpers/paths';

/* eslint-disable @typescript-eslint/no-require-imports */
const hessian = require('hessian.js');

/** Decodes an invocation body the way a provider does. */
function invocationOf(frame: Buffer): { method: string; args: unknown[]; attachments: Record<string, unknown> } {
  const [f] = readFrames(frame).frames;
  const dec = new hessian.DecoderV2(f.body);
  dec.read(); dec.read(); dec.read();
  const method = dec.read();
  const desc: string = dec.read();
  const n = (desc.match(/\[*(L[^;]+;|[ZBCDFIJS])/g) ?? []).length;
  const args = Array.from({ length: n }, () => dec.read());
  return { method, args, attachments: dec.read() };
}

const complex: Invocation = {
  path: 'com.example.UserService', version: '1.2.0', method: 'save',
  desc: 'Lcom/example/User;Ljava/util/List;Ljava/util/Map;[BJD',
  args: [
    { $class: 'com.example.User', $: { name: 'Zoë', age: 42, tags: ['a', 'b'], friends: [{ $class: 'com.example.User', $: { name: 'Bo', age: 7, tags: [], friends: [] } }] } },
    [1, 'two', 3.5, null, true, { nested: [1, 2, { deep: 'x'.repeat(2000) }] }],
    { k1: 'v1', k2: 99 },
    Buffer.alloc(3000, 1),
    { $class: 'long', $: 1234567890123 },
    3.14159,
  ],
  attachments: { batchJob: 'true', group: 'g1', 'x-trace': 'abc' },
};

describe('dubbo codec', () => {
  let dubbo: CodecHarness;
  before(async () => { dubbo = await CodecHarness.load(join(PLUGIN_DIR, 'dubbo.wasm')); });
  after(() => dubbo.close());

  it('reads interface, method, version and string attachments after arbitrary Java arguments', () => {
    const r = dubbo.decode(encodeRequest(77n, complex));
    assert.equal(r.status, 0, r.error);
    const [f] = r.frames;
    assert.equal(f.type, MessageType.REQUEST);
    assert.equal(f.requestId, 77n);
    assert.equal(f.get('interface'), 'com.example.UserService');
    assert.equal(f.get('method'), 'save');
    assert.equal(f.get('version'), '1.2.0');
    assert.equal(f.get('batchJob'), 'true');
    assert.equal(f.get('group'), 'g1');
    assert.equal(f.get('x-trace'), 'abc');
  });

  it('frames the same requests wherever the input is split', () => {
    const input = Buffer.concat([encodeRequest(1n, sayHello('a', { k: 'v' })), encodeHeartbeat(2n), encodeRequest(3n, sayHello('b'), false)]);
    const whole = dubbo.decode(input).frames.map((f) => [f.type, f.requestId, f.get('method'), f.get('k')]);
    assert.deepEqual(whole, [[MessageType.REQUEST, 1n, 'sayHello', 'v'], [MessageType.HEARTBEAT, 2n, undefined, undefined], [MessageType.ONEWAY, 3n, 'sayHello', undefined]]);
    for (let cut = 0; cut <= input.length; cut += 3) {
      assert.deepEqual(dubbo.decodeSplit(input, cut).map((f) => [f.type, f.requestId, f.get('method'), f.get('k')]), whole, `split at ${cut}`);
    }
  });

  const responses: Array<[string, Buffer, number, string | undefined]> = [
    ['value with attachments', response(5n, 4, 'hi', { server: 'v1' }), ResponseStatus.OK, 'v1'],
    ['null with attachments', response(5n, 5, null, { server: 'v2' }), ResponseStatus.OK, 'v2'],
    ['value, no attachments (Dubbo < 2.0.2)', response(5n, 1, [1, 2, 3], null), ResponseStatus.OK, undefined],
    ['exception with attachments', response(5n, 3, { $class: 'java.lang.RuntimeException', $: { detailMessage: 'boom' } }, { server: 'v1' }), ResponseStatus.ERROR, 'v1'],
    ['error status with message', response(5n, 0, 'service not found', null, 60), ResponseStatus.ERROR, undefined],
  ];
  for (const [name, bytes, status, server] of responses) {
    it(`response: ${name}`, () => {
      const r = dubbo.decode(bytes, { upstream: true });
      assert.equal(r.status, 0, r.error);
      assert.equal(r.frames[0].type, MessageType.RESPONSE);
      assert.equal(r.frames[0].status, status);
      assert.equal(r.frames[0].requestId, 5n);
      assert.equal(r.frames[0].get('server'), server);
    });
  }

  const malformed: Array<[string, Buffer, RegExp]> = [
    ['bad magic', Buffer.from('GET / HTTP/1.1\r\n\r\n'), /bad magic/],
    ['body that is not hessian', (() => { const b = encodeRequest(1n, sayHello('x')); b.writeUInt8(0x40, 16); return b; })(), /malformed request body/],
    ['truncated body (length says more than the hessian has)', (() => { const b = encodeRequest(1n, sayHello('x')); return b.subarray(0, b.length - 10); })(), /./],
  ];
  for (const [name, bytes, message] of malformed) {
    it(`malformed: ${name}`, () => {
      const r = dubbo.decode(bytes);
      if (name.startsWith('truncated')) {
        assert.equal(r.frames.length, 0); // not malformed yet: the codec waits for the declared length
        assert.equal(r.need, bytes.length + 10);
        return;
      }
      assert.equal(r.status, Status.PROTOCOL_ERROR);
      assert.match(r.error!, message);
    });
  }

  it('encode: mutation rewrites attachments and body length; a hessian decoder reads it back', () => {
    const frame = encodeRequest(9n, complex);
    const out = dubbo.encode(frame, new Mutation().set('group', 'g2').set('tenant', 'blue').delete('x-trace').setRequestId(1234n));
    const [f] = readFrames(out).frames;
    assert.equal(f.id, 1234n);
    const inv = invocationOf(out);
    assert.equal(inv.method, 'save');
    assert.equal((inv.args[0] as { name: string }).name, 'Zoë', 'arguments untouched');
    assert.equal(inv.attachments.group, 'g2');
    assert.equal(inv.attachments.tenant, 'blue');
    assert.equal(inv.attachments['x-trace'], undefined);
    assert.equal(inv.attachments.batchJob, 'true');
  });

  it('encode: an id-only mutation rewrites the header in place', () => {
    const frame = response(5n, 4, 'hi', { server: 'v1' });
    const out = dubbo.encode(frame, new Mutation().setRequestId(0xffff_ffff_ffffn), { upstream: true, type: MessageType.RESPONSE });
    assert.equal(out.readBigUInt64BE(4), 0xffff_ffff_ffffn);
    assert.ok(out.subarray(12).equals(frame.subarray(12)));
  });

  it('local reply: an error status, the message as a hessian string, the request id', () => {
    const reply = dubbo.localReply(encodeRequest(42n, sayHello('x')), ErrorKind.ROUTE_NOT_FOUND, 'meltemi: no route matched the request');
    const [f] = readFrames(reply).frames;
    assert.equal(f.id, 42n);
    assert.equal(f.status, 60);
    assert.equal(new hessian.DecoderV2(f.body).read(), 'meltemi: no route matched the request');
  });

  it('heartbeat reply: an event response with a null body and the same id', () => {
    const [f] = readFrames(dubbo.heartbeatReply(encodeHeartbeat(8n))!).frames;
    assert.deepEqual([f.event, f.request, f.status, f.id, f.body.toString('hex')], [true, false, 20, 8n, '4e']);
  });
});
