// ABI v1 conformance: the guest and host constant tables agree, every export and import is
// exercised through the real host loader with the "kv" conformance codec, and every loader
// rule rejects the module that breaks it with an error naming the file and the item.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CodecHarness, Mutation } from '../sdk/harness/codec-harness';
import { isMeltemiError, PluginError } from '../runtime/core/errors';
import { ConsoleLogger } from '../runtime/core/logger';
import * as abi from '../runtime/wasm/abi';
import { WELL_KNOWN_KEYS } from '../runtime/codec/well-known-keys';
import { compilePlugin } from '../runtime/plugin/plugin-loader';
import { parseDescriptor } from '../runtime/plugin/plugin-descriptor';
import { CodecPlugin } from '../runtime/codec/codec-plugin';
import { CaptureLogger } from './helpers/capture-logger';
import { kvFrame, parseKv } from './helpers/kv-frames';
import { ROOT, TEST_PLUGIN_DIR } from './helpers/paths';

const KV = join(TEST_PLUGIN_DIR, 'kv.wasm');
const { MessageType, ErrorKind, FrameFlag, Status } = abi;

describe('ABI v1 conformance', () => {
  describe('constant tables', () => {
    const guest = readFileSync(join(ROOT, 'sdk/assembly/abi.ts'), 'utf8');
    const guestConst = (name: string) => {
      const m = new RegExp(`export const ${name}: \\w+ = (-?(?:0x)?[0-9a-f]+);`, 'i').exec(guest);
      assert.ok(m, `sdk/assembly/abi.ts has no constant ${name}`);
      return Number(m[1]);
    };
    const tables: Array<[string, Record<string, number>]> = [
      ['STATUS_', Status], ['MSG_', MessageType], ['FRAME_', FrameFlag], ['OP_', abi.MutationOp],
      ['ERR_', ErrorKind], ['LOG_', abi.LogLevelCode],
    ];
    for (const [prefix, table] of tables) {
      it(`${prefix}* match the host`, () => {
        for (const [name, value] of Object.entries(table)) assert.equal(guestConst(prefix + name), value, prefix + name);
      });
    }
    it('layout sizes and call flags match the host', () => {
      for (const [name, value] of Object.entries(abi.Layout)) assert.equal(guestConst(name), value, name);
      assert.equal(guestConst('SIDE_UPSTREAM'), abi.CallFlag.SIDE_UPSTREAM);
      assert.equal(guestConst('DECODE_END_OF_STREAM'), abi.CallFlag.DECODE_END_OF_STREAM);
      assert.equal(guestConst('ENCODE_SIDE_UPSTREAM'), abi.CallFlag.ENCODE_SIDE_UPSTREAM);
      assert.equal(guestConst('ABI_MINOR'), abi.ABI_MINOR);
    });
    it('well-known keys match the host, id for id', () => {
      const keysTs = readFileSync(join(ROOT, 'sdk/assembly/keys.ts'), 'utf8');
      const list = /WELL_KNOWN_KEYS: string\[\] = \[([\s\S]*?)\];/.exec(keysTs)![1];
      const guestKeys = [...list.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
      assert.deepEqual(guestKeys, [...WELL_KNOWN_KEYS]);
      for (const m of keysTs.matchAll(/export const KEY_\w+: u16 = (\d+);/g)) assert.ok(WELL_KNOWN_KEYS[Number(m[1])]);
    });
  });

  describe('exports and imports, through the kv codec', () => {
    let logger: CaptureLogger;
    let kv: CodecHarness;
    before(async () => {
      logger = new CaptureLogger();
      kv = await CodecHarness.load(KV, { logger, config: { tenant: 'blue' } });
    });
    after(() => kv.close());

    it('meltemi_info: the descriptor', () => {
      assert.deepEqual(kv.descriptor, {
        abiMinor: 1, kind: 'codec', name: 'kv', protocol: 'kv', version: '0.1.0', correlation: 'request_id', passthroughEncode: true, calls: new Set(),
        serverFirst: false, bindUpstream: false, expectResponses: false,
      });
    });

    it('meltemi_decode: type, 64-bit request id, flags, referenced, well-known and inline entries', () => {
      const id = 0xfedc_ba98_7654_3210n;
      const r = kv.decode(kvFrame(MessageType.REQUEST, id, [['method', 'sayHello'], ['user', 'ana'], ['user', 'bo']]));
      assert.equal(r.status, 0);
      assert.equal(r.frames.length, 1);
      const [f] = r.frames;
      assert.equal(f.type, MessageType.REQUEST);
      assert.equal(f.requestId, id);
      assert.equal(f.flags & FrameFlag.HAS_REQUEST_ID, FrameFlag.HAS_REQUEST_ID);
      assert.deepEqual(f.metadata, [['method', 'sayHello'], ['user', 'ana'], ['user', 'bo'], ['pairs', '3'], ['config', '{"tenant":"blue"}']]);
    });

    it('meltemi_decode: every complete frame of the input in one call, the tail left unconsumed', () => {
      const a = kvFrame(MessageType.REQUEST, 1n, [['k', 'v']]);
      const b = kvFrame(MessageType.ONEWAY, 2n, []);
      const c = kvFrame(MessageType.REQUEST, 3n, [['x', 'y'.repeat(100)]]);
      const r = kv.decode(Buffer.concat([a, b, c.subarray(0, 30)]));
      assert.deepEqual(r.frames.map((f) => f.requestId), [1n, 2n]);
      assert.equal(r.consumed, a.length + b.length);
      assert.equal(r.need, a.length + b.length + c.length, 'need is the total input length the next frame needs');
    });

    it('meltemi_decode: the same frames whatever byte the input is split at', () => {
      const input = Buffer.concat([kvFrame(0, 7n, [['a', '1']]), kvFrame(2, 8n, [['b', '22']]), kvFrame(7, 9n, [])]);
      const whole = kv.decode(input).frames.map((f) => [f.requestId, f.type, f.metadata]);
      for (let cut = 0; cut <= input.length; cut++) {
        assert.deepEqual(kv.decodeSplit(input, cut).map((f) => [f.requestId, f.type, f.metadata]), whole, `split at ${cut}`);
      }
    });

    it('meltemi_decode: a malformed frame after good ones: the good ones, then an error with a message', () => {
      const bad = Buffer.alloc(16);
      bad.writeUInt32BE(8, 0);
      const r = kv.decode(Buffer.concat([kvFrame(0, 1n, []), bad]));
      assert.equal(r.frames.length, 1);
      assert.equal(r.status, Status.PROTOCOL_ERROR);
      assert.match(r.error!, /below the 16-byte header/);
    });

    it('meltemi_decode: response side decodes response status', () => {
      const r = kv.decode(kvFrame(MessageType.RESPONSE, 5n, [['status', 'error']]), { upstream: true });
      assert.equal(r.frames[0].type, MessageType.RESPONSE);
      assert.equal(r.frames[0].status, abi.ResponseStatus.ERROR);
    });

    it('meltemi_encode: SET, APPEND, DELETE and SET_REQUEST_ID applied in order', () => {
      const frame = kvFrame(0, 10n, [['a', '1'], ['b', '2'], ['b', '3'], ['c', '4']]);
      const out = kv.encode(frame, new Mutation().set('b', 'x').append('a', '5').delete('c').set('method', 'm').setRequestId(0xffff_ffff_0000_0001n));
      assert.deepEqual(parseKv(out), { type: 0, flags: 0, id: 0xffff_ffff_0000_0001n, pairs: [['a', '1'], ['b', 'x'], ['a', '5'], ['method', 'm']] });
    });

    it('meltemi_encode: an empty mutation forwards the frame unchanged', () => {
      const frame = kvFrame(0, 10n, [['a', '1']]);
      assert.equal(kv.encode(frame), frame);
    });

    it('meltemi_local_reply: an error frame echoing the request id', () => {
      const reply = kv.localReply(kvFrame(0, 42n, []), ErrorKind.NO_HEALTHY_UPSTREAM, 'no healthy upstream');
      assert.deepEqual(parseKv(reply), { type: MessageType.ERROR, flags: 0, id: 42n, pairs: [['kind', '2'], ['message', 'no healthy upstream']] });
      assert.equal(parseKv(kv.localReply(null, ErrorKind.PROTOCOL_ERROR, 'bad')).id, 0n, 'works without a request');
    });

    it('meltemi_heartbeat_reply: the reply frame', () => {
      const reply = kv.heartbeatReply(kvFrame(MessageType.HEARTBEAT, 77n, []));
      assert.deepEqual(parseKv(reply!), { type: MessageType.HEARTBEAT, flags: 1, id: 77n, pairs: [] });
    });

    it('meltemi.log: guest log lines reach the host logger, tagged with the plugin file', () => {
      kv.decode(kvFrame(0, 1n, [['log', 'hello from the guest']]));
      const line = logger.lines.find((l) => l.message === 'hello from the guest');
      assert.ok(line, 'log line recorded');
      assert.equal(line.level, 'info');
      assert.equal(line.fields.plugin, KV);
    });

    it('meltemi_in_reserve and memory growth: a 3 MiB frame and a 4 MiB guest allocation', () => {
      const before = kv.plugin.instance.memoryBytes;
      const big = Buffer.alloc(3 << 20, 0x61);
      const r = kv.decode(Buffer.concat([kvFrame(0, 1n, [['grow', '4096']]), kvFrame(0, 2n, [['big', big]])]));
      assert.equal(r.frames.length, 2);
      assert.ok(kv.plugin.instance.memoryBytes > before + (6 << 20), 'guest memory grew');
      assert.equal(r.frames[1].get('big')!.length, big.length);
      assert.equal(kv.decode(kvFrame(0, 3n, [['after', 'growth']])).frames[0].get('after'), 'growth');
    });

    it('env.abort: a trap fails the call with its message, and the instance is replaced', () => {
      const recycles = kv.plugin.recycles;
      assert.throws(() => kv.decode(kvFrame(0, 1n, [['trap', '']])), (err: unknown) => {
        assert.ok(isMeltemiError(err, 'MELTEMI_PLUGIN_TRAP'));
        assert.match((err as Error).message, /trap requested by the frame/);
        assert.match((err as Error).message, /kv\.wasm/);
        return true;
      });
      assert.equal(kv.plugin.recycles, recycles + 1);
      const r = kv.decode(kvFrame(0, 2n, [['k', 'v']]));
      assert.deepEqual(r.frames[0].metadata.slice(0, 1), [['k', 'v']], 'the context works again in the new instance');
      assert.equal(r.frames[0].get('config'), '{"tenant":"blue"}', 'the context was re-created with its config');
    });
  });

  describe('loader rules', () => {
    const logger = new ConsoleLogger('silent');
    const load = (name: string) => compilePlugin(join(TEST_PLUGIN_DIR, `${name}.wasm`), readFileSync(join(TEST_PLUGIN_DIR, `${name}.wasm`)), logger);
    const cases: Array<[fixture: string, code: string, message: RegExp]> = [
      ['no-marker', 'MELTEMI_PLUGIN_INVALID', /missing export "meltemi_abi_v1"/],
      ['abi-v2', 'MELTEMI_PLUGIN_INVALID', /built for meltemi ABI v2; this host supports v1/],
      ['unknown-import', 'MELTEMI_PLUGIN_INVALID', /unknown import "env\.fetch"/],
      ['missing-decode', 'MELTEMI_PLUGIN_INVALID', /missing export "meltemi_decode" required for a codec/],
      ['wrong-arity', 'MELTEMI_PLUGIN_INVALID', /export "meltemi_decode" takes 2 parameters; ABI v1 says 3/],
      ['filter-kind', 'MELTEMI_PLUGIN_UNSUPPORTED', /filter plugins start at ABI 1\.1 \(abi_minor 1\); ABI 1\.0 only declared them/],
      ['init-trap', 'MELTEMI_PLUGIN_INVALID', /_initialize trapped: refusing to start/],
    ];
    for (const [fixture, code, message] of cases) {
      it(`rejects ${fixture}: ${message.source}`, () => {
        assert.throws(() => load(fixture), (err: unknown) => {
          assert.ok(err instanceof PluginError, String(err));
          assert.equal(err.code, code);
          assert.match(err.message, message);
          assert.ok(err.message.startsWith(join(TEST_PLUGIN_DIR, `${fixture}.wasm`)), 'the error names the file');
          return true;
        });
      });
    }

    it('rejects bytes that are not WebAssembly', () => {
      assert.throws(() => compilePlugin('junk.wasm', Buffer.from('not wasm at all'), logger), /junk\.wasm: not a valid WebAssembly module/);
    });

    it('refuses to read guest output outside guest memory (ABI violation, instance replaced)', () => {
      const plugin = new CodecPlugin(load('bad-out'), logger);
      const ctx = plugin.open(false, Buffer.alloc(0));
      assert.throws(() => ctx.decode(Buffer.from('abc'), 0), (err: unknown) => isMeltemiError(err, 'MELTEMI_ABI_VIOLATION') && /outside guest memory/.test((err as Error).message));
      assert.equal(plugin.recycles, 1);
    });

    const descriptors: Array<[json: string, message: RegExp]> = [
      ['{"abi_minor":4,"kind":"codec","name":"x"}', /"abi_minor" is 4; this host supports ABI 1\.3/],
      ['{"abi_minor":2,"kind":"codec","name":"x","expect_responses":true}', /"expect_responses" needs abi_minor 3/],
      ['{"abi_minor":3,"kind":"filter","name":"x","expect_responses":true}', /"expect_responses" is for codecs/],
      ['{"abi_minor":3,"kind":"codec","name":"x","expect_responses":1}', /"expect_responses" must be a boolean/],
      ['{"abi_minor":3,"kind":"codec","name":"x","correlation":"request_id","expect_responses":true}', /"expect_responses" needs correlation "order"/],
      ['{"abi_minor":1,"kind":"codec","name":"x","server_first":true}', /"server_first" needs abi_minor 2/],
      ['{"abi_minor":2,"kind":"codec","name":"x","server_first":true,"bind_upstream":false}', /"bind_upstream" must be true when server_first is/],
      ['{"abi_minor":2,"kind":"filter","name":"x","bind_upstream":true}', /"bind_upstream" is for codecs/],
      ['{"abi_minor":2,"kind":"codec","name":"x","bind_upstream":"yes"}', /"bind_upstream" must be a boolean/],
      ['{"abi_minor":0,"kind":"proxy","name":"x"}', /"kind" must be "codec" or "filter"/],
      ['{"abi_minor":0,"kind":"codec","name":"Bad Name"}', /"name" must match/],
      ['{"abi_minor":0,"kind":"codec","name":"x","correlation":"random"}', /"correlation" must be "order" or "request_id"/],
      ['{"abi_minor":0,"kind":"codec","name":"x","passthrough_encode":"yes"}', /"passthrough_encode" must be a boolean/],
      ['not json', /did not return JSON/],
    ];
    for (const [json, message] of descriptors) {
      it(`descriptor ${json.slice(0, 40)}… is rejected`, () => {
        assert.throws(() => parseDescriptor('p.wasm', json), message);
      });
    }
  });
});
