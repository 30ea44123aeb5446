// Filters may mutate responses; the codec applies what it can represent. For Dubbo that is the
// response's attachments: added to a response that had none (its flag gains "with
// attachments"), merged into a response that had some, the value left byte for byte. Live
// through meltemi with a response filter, and at the codec through the harness.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Meltemi } from '../runtime/server';
import { CodecHarness, MessageType, Mutation } from '../sdk/harness/codec-harness';
import { DubboConsumer, DubboProvider, encodeResponse, sayHello } from './helpers/dubbo-peers';
import { PLUGIN_DIR, TEST_PLUGIN_DIR } from './helpers/paths';
import { portOf, startProxy } from './helpers/proxy';
import { mkdtempSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const hessian = require('hessian.js');

describe('response mutation: Dubbo attachments', function () {
  this.timeout(20_000);
  let provider: DubboProvider;
  let proxy: Meltemi;
  let consumer: DubboConsumer;

  before(async () => {
    provider = await DubboProvider.start('p1', (call) => (call.method === 'boom' ? { error: 'it broke' } : { value: `hello ${call.args[0]}` }));
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-respmut-'));
    copyFileSync(join(PLUGIN_DIR, 'dubbo.wasm'), join(dir, 'dubbo.wasm'));
    copyFileSync(join(TEST_PLUGIN_DIR, 'response-tagger.wasm'), join(dir, 'response-tagger.wasm'));
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(dir)} }
listeners:
  - name: dubbo
    port: 0
    protocol: dubbo
    filters: [ { name: response-tagger, config: { value: sidecar-1 } } ]
    route_config: { routes: [ { route: { cluster: p } } ] }
clusters:
  - { name: p, endpoints: [ { address: 127.0.0.1, port: ${provider.port} } ] }
`);
    consumer = await DubboConsumer.connect(portOf(proxy, 'dubbo'));
  });

  after(async () => {
    consumer?.close();
    await proxy?.stop();
    await provider?.stop();
  });

  it('a response filter\'s attachments reach the consumer, merged with the provider\'s; the value is intact', async () => {
    const r = await consumer.invoke(sayHello('ana'));
    assert.equal(r.value, 'hello ana');
    assert.deepEqual(r.attachments, { dubbo: '2.0.2', server: 'p1', 'served-by': 'sidecar-1', 'upstream-status': 'ok' });
  });

  it('an exception response gets them too, and the filter saw it as an error', async () => {
    const r = await consumer.invoke({ ...sayHello('x'), method: 'boom' });
    assert.match(r.exception ?? '', /it broke/);
    assert.equal(r.attachments['upstream-status'], 'error');
  });

  const flags: Array<[string, number, unknown, number]> = [
    ['a value without attachments (flag 1)', 1, 'v', 4],
    ['null without attachments (flag 2)', 2, null, 5],
  ];
  for (const [what, flag, value, expectedFlag] of flags) {
    it(`codec: ${what} becomes flag ${expectedFlag} with the attachments`, async () => {
      const codec = await CodecHarness.load(join(PLUGIN_DIR, 'dubbo.wasm'));
      const original = encodeResponse(7n, flag, value, null);
      const out = codec.encode(original, new Mutation().set('served-by', 'm'), { type: MessageType.RESPONSE, upstream: true });
      assert.equal(out.readUInt32BE(12), out.length - 16, 'body length fixed');
      const dec = new hessian.DecoderV2(out.subarray(16));
      assert.equal(dec.read(), expectedFlag);
      if (flag === 1) assert.equal(dec.read(), value);
      assert.deepEqual(dec.read(), { 'served-by': 'm' });
      const [decoded] = codec.decode(out, { upstream: true }).frames;
      assert.equal(decoded.get('served-by'), 'm');
      codec.close();
    });
  }
});
