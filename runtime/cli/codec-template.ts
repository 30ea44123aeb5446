// What `meltemi new codec NAME` writes beyond the common project files (plugin-project.ts): a
// working request-id codec for a small length-prefixed protocol, its harness test and README.

import { pascal, PluginSources } from './plugin-project';

/** The protocol the template codec speaks, so the first build already routes and tests. */
const codecSource = (name: string) => `// ${name}: a meltemi codec. Replace the protocol below with yours.
// Template protocol: u32 length (whole frame, big-endian) | u32 request id | u16 method length |
// method | body. The method becomes metadata \`method\`; a frame with an empty method is a heartbeat.
import {
  Bytes, Codec, CodecInfo, Correlation, Frame, Mutation, Output, registerCodec,
  FRAME_HAS_REQUEST_ID, KEY_METHOD, MSG_HEARTBEAT, STATUS_OK, STATUS_PROTOCOL_ERROR, STATUS_UNCHANGED,
} from "meltemi/sdk/assembly";

// The ABI exports come from the SDK: a codec never writes them itself.
export * from "meltemi/sdk/assembly/exports";

const HEADER = 10;
const MAX_FRAME = 16 * 1024 * 1024;

class ${pascal(name)}Codec extends Codec {
  // One frame at the start of \`input\`: its length, 0 to wait for more bytes, < 0 if invalid.
  decode(input: Bytes, frame: Frame, upstream: bool): i32 {
    if (input.length < HEADER) return 0;
    const length = input.u32be(0);
    if (length < <u32>HEADER || length > <u32>MAX_FRAME) {
      frame.fail("frame length " + length.toString() + " out of range");
      return STATUS_PROTOCOL_ERROR;
    }
    if (<u32>input.length < length) {
      frame.needBytes = <i32>length; // the host waits for the whole frame
      return 0;
    }
    const methodLength = <i32>input.u16be(8);
    if (HEADER + methodLength > <i32>length) {
      frame.fail("method overruns the frame");
      return STATUS_PROTOCOL_ERROR;
    }
    frame.requestId = <u64>input.u32be(4);
    frame.flags |= FRAME_HAS_REQUEST_ID;
    if (methodLength == 0) frame.messageType = MSG_HEARTBEAT;
    frame.putRef(KEY_METHOD, HEADER, methodLength); // points into the frame: no copy
    return <i32>length;
  }

  // The host renumbers request ids on shared upstream connections: write the new id.
  encode(input: Bytes, messageType: u8, upstream: bool, mutation: Mutation, out: Output): i32 {
    if (!mutation.hasRequestId) return STATUS_UNCHANGED;
    out.bytes(input, 0, input.length);
    out.setU32be(4, <u32>mutation.requestId);
    return STATUS_OK;
  }

  // An error the proxy answers itself (no route, upstream down, ...): method "error", the reason as body.
  localReply(request: Bytes, kind: i32, message: Bytes, out: Output): i32 {
    writeFrame(out, request.length >= HEADER ? request.u32be(4) : 0, "error", message);
    return STATUS_OK;
  }

  heartbeatReply(request: Bytes, out: Output): i32 {
    writeFrame(out, request.u32be(4), "", null);
    return STATUS_OK;
  }
}

function writeFrame(out: Output, id: u32, method: string, body: Bytes | null): void {
  const start = out.length;
  const m = String.UTF8.encode(method);
  out.u32be(0).u32be(id).u16be(<u16>m.byteLength).copy(changetype<usize>(m), m.byteLength);
  if (body) out.bytes(body, 0, body.length);
  out.setU32be(start, <u32>(out.length - start));
}

const codec = new ${pascal(name)}Codec(); // stateless: one object serves every connection
registerCodec(new CodecInfo("${name}", "${name}", "0.1.0", Correlation.RequestId), (): Codec => codec);
`;

const testSource = (name: string) => `// Runs the built codec through meltemi's real loader (node --test; no proxy needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CodecHarness, Mutation, ErrorKind } from 'meltemi/harness';

const WASM = new URL('../build/${name}.wasm', import.meta.url).pathname;

function frame(id, method, body = '') {
  const m = Buffer.from(method);
  const b = Buffer.from(body);
  const f = Buffer.alloc(10 + m.length + b.length);
  f.writeUInt32BE(f.length, 0);
  f.writeUInt32BE(id, 4);
  f.writeUInt16BE(m.length, 8);
  m.copy(f, 10);
  b.copy(f, 10 + m.length);
  return f;
}

test('decodes frames with their method and request id, split anywhere', async () => {
  const codec = await CodecHarness.load(WASM);
  const input = Buffer.concat([frame(7, 'get', 'a'), frame(8, 'put', 'b')]);
  assert.deepEqual(codec.decode(input).frames.map((f) => [f.requestId, f.get('method')]), [[7n, 'get'], [8n, 'put']]);
  for (let cut = 0; cut <= input.length; cut++) assert.equal(codec.decodeSplit(input, cut).length, 2);
  codec.close();
});

test('rewrites the request id the proxy assigns', async () => {
  const codec = await CodecHarness.load(WASM);
  const out = codec.encode(frame(7, 'get'), new Mutation().setRequestId(42n));
  assert.equal(out.readUInt32BE(4), 42);
  codec.close();
});

test('answers errors and heartbeats itself', async () => {
  const codec = await CodecHarness.load(WASM);
  const reply = codec.localReply(frame(9, 'get'), ErrorKind.ROUTE_NOT_FOUND, 'no route');
  assert.equal(codec.decode(reply, { upstream: true }).frames[0].get('method'), 'error');
  assert.equal(codec.heartbeatReply(frame(3, '')).readUInt32BE(4), 3);
  assert.match(codec.decode(Buffer.from([0, 0, 0, 4, 0, 0, 0, 1, 0, 0])).error ?? '', /out of range/); // a length below the header
  codec.close();
});
`;

const readme = (name: string, meltemi: string) => `# ${name} — a meltemi codec

\`\`\`sh
npm install        # meltemi (from ${meltemi}) and AssemblyScript
npm test           # builds build/${name}.wasm and runs test/*.test.mjs through meltemi's loader
\`\`\`

\`assembly/index.ts\` is the codec; the SDK reference is meltemi's \`sdk/README.md\`. To serve it,
point a meltemi config at this folder's \`build/\` and name the protocol:

\`\`\`yaml
plugins: { directory: ./build }
listeners:
  - { name: ${name}, port: 9000, protocol: ${name}, route_config: { routes: [ { route: { cluster: backend } } ] } }
clusters:
  - { name: backend, endpoints: [ { address: 127.0.0.1, port: 9001 } ] }
\`\`\`

then \`npx meltemi run --config meltemi.yaml\`. meltemi reloads the \`.wasm\` when \`npm run build\` replaces it.
`;

/** The codec-specific files of a new codec project (the rest is plugin-project.ts's). */
export function codecSources(name: string, meltemiDir: string): PluginSources {
  return { index: codecSource(name), test: testSource(name), readme: readme(name, meltemiDir) };
}
