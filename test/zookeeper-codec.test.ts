// The ZooKeeper codec through the harness, on packets node-zookeeper-client's own jute encoder
// writes: the ConnectRequest as the session's routing frame, opcodes and paths of requests, the
// ConnectResponse and replies checked against the xid their request set, watch events as
// unsolicited frames, refusals, splits and local replies.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CodecHarness } from '../sdk/harness/codec-harness';
import { ErrorKind, FrameFlag, MessageType, ResponseStatus, Status } from '../runtime/wasm/abi';
import { PLUGIN_DIR } from './helpers/paths';
import { connectRequest, connectResponse, reply, request, watchEvent } from './helpers/zookeeper-peers';

const EXPECT_CONNECT = 0x8000_0001;

describe('zookeeper codec', () => {
  let zk: CodecHarness;
  const PHASE_OPEN = 2;
  /** A fresh session: nothing sent yet. */
  const fresh = () => { zk.session!.words.fill(0); };
  /** A session whose ConnectResponse came back. */
  const open = () => { zk.session!.words.fill(0); zk.session!.words[0] = PHASE_OPEN; };

  before(async () => { zk = await CodecHarness.load(join(PLUGIN_DIR, 'zookeeper.wasm')); });
  after(() => zk.close());

  it('declares a bound, client-first session with order correlation', () => {
    const d = zk.descriptor;
    assert.equal(d.bindUpstream, true);
    assert.equal(d.serverFirst, false);
    assert.equal(d.correlation, 'order');
  });

  it('reads the ConnectRequest as the session\'s routing frame, then requests', () => {
    fresh();
    const [c] = zk.decode(connectRequest()).frames;
    assert.equal(c.get('command'), 'connect');
    assert.equal(c.get('session_id'), undefined);
    assert.ok(c.flags & FrameFlag.ROUTE);
    assert.equal(c.expect, EXPECT_CONNECT);
    const [r] = zk.decode(request(0, 'getData', { path: '/app/config', watch: true })).frames;
    assert.equal(r.get('command'), 'getData');
    assert.equal(r.get('path'), '/app/config');
    assert.equal(r.flags & FrameFlag.ROUTE, 0);
    assert.equal(r.expect, 1);
  });

  it('names a resumed session by its id', () => {
    fresh();
    const [c] = zk.decode(connectRequest(Buffer.from('0100a2b3c4d5e6f7', 'hex'))).frames;
    assert.equal(c.get('session_id'), '0x100a2b3c4d5e6f7');
  });

  const requests: Array<{ name: string; frame: Buffer; command: string; path?: string; more?: Record<string, string>; flags?: number; expect: number }> = [
    { name: 'create', frame: request(5, 'create', { path: '/a/b', data: Buffer.from('x'), acl: [], flags: 0 }), command: 'create', path: '/a/b', expect: 6 },
    { name: 'delete', frame: request(6, 'delete', { path: '/a', version: -1 }), command: 'delete', path: '/a', expect: 7 },
    { name: 'exists', frame: request(7, 'exists', { path: '/e', watch: false }), command: 'exists', path: '/e', expect: 8 },
    { name: 'setData', frame: request(8, 'setData', { path: '/s', data: Buffer.alloc(1000, 1), version: 3 }), command: 'setData', path: '/s', expect: 9 },
    { name: 'getChildren2', frame: request(9, 'getChildren2', { path: '/', watch: true }), command: 'getChildren2', path: '/', expect: 10 },
    { name: 'ping', frame: request(-2, 'ping'), command: 'ping', expect: 0xffff_ffff },
    { name: 'auth', frame: request(-4, 'auth', { type: 0, scheme: 'digest', auth: Buffer.from('u:p') }), command: 'auth', more: { scheme: 'digest' }, expect: 0xffff_fffd },
    { name: 'setWatches', frame: request(-8, 'setWatches', { relativeZxid: Buffer.alloc(8), dataWatches: ['/w'], existWatches: [], childWatches: [] }), command: 'setWatches', expect: 0xffff_fff9 },
    { name: 'closeSession', frame: request(10, 'closeSession'), command: 'closeSession', flags: FrameFlag.DRAIN_CLOSE, expect: 11 },
    { name: 'a long path', frame: request(11, 'exists', { path: '/' + 'p'.repeat(5000), watch: false }), command: 'exists', path: '/' + 'p'.repeat(5000), expect: 12 },
  ];
  for (const c of requests) {
    it(`reads ${c.name}`, () => {
      open();
      const r = zk.decode(c.frame);
      assert.equal(r.consumed, c.frame.length, r.error);
      const [f] = r.frames;
      assert.equal(f.type, MessageType.REQUEST);
      assert.equal(f.get('command'), c.command);
      assert.equal(f.get('path'), c.path);
      for (const [k, v] of Object.entries(c.more ?? {})) assert.equal(f.get(k), v);
      assert.equal(f.flags & (c.flags ?? 0), c.flags ?? 0);
      assert.equal(f.expect, c.expect);
      for (const cut of [1, 3, 4, 9, c.frame.length - 1]) {
        open();
        const split = zk.decodeSplit(c.frame, cut);
        assert.equal(split.length, 1, `cut at ${cut}`);
        assert.equal(split[0].get('command'), c.command);
      }
    });
  }

  it('reads the path of a multi\'s first operation', () => {
    open();
    // MultiHeader(type create, done false, err -1), then CreateRequest, then the closing header.
    const path = Buffer.from('/multi/x');
    const body = Buffer.alloc(9 + 4 + path.length + 4 + 4 + 4 + 9);
    let p = 0;
    body.writeInt32BE(1, p); p += 4; body[p++] = 0; body.writeInt32BE(-1, p); p += 4;
    body.writeInt32BE(path.length, p); p += 4; path.copy(body, p); p += path.length;
    body.writeInt32BE(0, p); p += 4; body.writeInt32BE(0, p); p += 4; body.writeInt32BE(0, p); p += 4;
    body.writeInt32BE(-1, p); p += 4; body[p++] = 1; body.writeInt32BE(-1, p);
    const h = Buffer.alloc(12);
    h.writeInt32BE(8 + body.length, 0); h.writeInt32BE(20, 4); h.writeInt32BE(14, 8);
    const [f] = zk.decode(Buffer.concat([h, body])).frames;
    assert.equal(f.get('command'), 'multi');
    assert.equal(f.get('path'), '/multi/x');
  });

  const replies: Array<{ name: string; frame: Buffer; expect: number; status?: number; flags?: number; path?: string }> = [
    { name: 'the ConnectResponse', frame: connectResponse(), expect: EXPECT_CONNECT, status: ResponseStatus.OK },
    { name: 'an expired session\'s ConnectResponse', frame: connectResponse(Buffer.alloc(8), 0), expect: EXPECT_CONNECT, status: ResponseStatus.ERROR },
    { name: 'a reply', frame: reply(4, 0, Buffer.from('data')), expect: 5, status: ResponseStatus.OK },
    { name: 'a NoNode reply', frame: reply(4, -101), expect: 5, status: ResponseStatus.ERROR },
    { name: 'a ping reply', frame: reply(-2), expect: 0xffff_ffff, status: ResponseStatus.OK },
    { name: 'a watch event while a request waits', frame: watchEvent(3, '/app/config'), expect: 5, flags: FrameFlag.UNSOLICITED, path: '/app/config' },
    { name: 'a watch event while none waits', frame: watchEvent(4, '/app'), expect: 0, flags: FrameFlag.UNSOLICITED, path: '/app' },
  ];
  for (const c of replies) {
    it(`reads ${c.name} from upstream`, () => {
      open();
      const r = zk.decode(c.frame, { upstream: true, expect: c.expect });
      assert.equal(r.consumed, c.frame.length, r.error);
      const [f] = r.frames;
      assert.equal(f.type, MessageType.RESPONSE);
      if (c.status !== undefined) assert.equal(f.status, c.status);
      assert.equal(f.flags & (c.flags ?? 0), c.flags ?? 0);
      assert.equal(f.get('path'), c.path);
    });
  }

  const refused: Array<{ name: string; frame: Buffer; error: RegExp; upstream?: boolean; expect?: number; state?: () => void }> = [
    { name: 'a four-letter word', frame: Buffer.from('ruok'), error: /four-letter words/, state: () => fresh() },
    { name: 'a negative length', frame: Buffer.from('ffffff00', 'hex'), error: /negative packet length/ },
    { name: 'a short ConnectRequest', frame: Buffer.from('00000008' + '00'.repeat(8), 'hex'), error: /ConnectRequest shorter/, state: () => fresh() },
    { name: 'a ConnectRequest with a passwd past its end', frame: (() => { const b = connectRequest(); b.writeInt32BE(1000, 28); return b; })(), error: /bad passwd/, state: () => fresh() },
    { name: 'a request shorter than its header', frame: Buffer.from('0000000400000001', 'hex'), error: /shorter than its header/ },
    { name: 'xid -1 from a client', frame: request(-1, 'exists', { path: '/x', watch: false }), error: /xid -1 is reserved/ },
    { name: 'a path past the end', frame: (() => { const b = request(1, 'exists', { path: '/x', watch: false }); b.writeInt32BE(99, 12); return b; })(), error: /path length past/ },
    { name: 'a reply to no request', frame: reply(3), error: /while no request waits/, upstream: true, expect: 0 },
    { name: 'a reply out of order', frame: reply(3), error: /oldest request in flight has xid 2/, upstream: true, expect: 3 },
    { name: 'a short reply', frame: Buffer.from('0000000400000001', 'hex'), error: /shorter than its header/, upstream: true, expect: 2 },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}`, () => {
      (c.state ?? open)();
      const r = zk.decode(c.frame, { upstream: c.upstream, expect: c.expect });
      assert.equal(r.status, Status.PROTOCOL_ERROR, `status ${r.status}`);
      assert.match(r.error ?? '', c.error);
    });
  }

  it('asks for the whole of a declared length, so max_frame_size can refuse it before it arrives', () => {
    open();
    const r = zk.decode(Buffer.from('7ffffff0000000', 'hex'));
    assert.equal(r.need, 0x7fff_fff4);
  });

  it('answers local failures with a reply header: the request\'s xid and a KeeperException code', () => {
    open();
    for (const [kind, code] of [[ErrorKind.PERMISSION_DENIED, -102], [ErrorKind.TIMEOUT, -7], [ErrorKind.OVER_LIMIT, -127], [ErrorKind.NO_HEALTHY_UPSTREAM, -4], [ErrorKind.ROUTE_NOT_FOUND, -1]] as const) {
      const out = zk.localReply(request(33, 'getData', { path: '/x', watch: false }), kind, 'why');
      assert.equal(out.length, 20);
      assert.equal(out.readInt32BE(0), 16);
      assert.equal(out.readInt32BE(4), 33);
      assert.equal(out.readInt32BE(16), code);
    }
  });

  it('writes nothing before the ConnectResponse: the client reads only that first', () => {
    fresh();
    zk.decode(connectRequest());
    assert.equal(zk.localReply(connectRequest(), ErrorKind.ROUTE_NOT_FOUND, 'no route').length, 0);
  });
});
