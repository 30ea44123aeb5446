// What a codec author meets: a request-id codec that does not rewrite ids is refused at load and
// by the harness (not discovered as timeouts in production), and the first-party request-id
// codecs pass the same check.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isMeltemiError } from '../runtime/core/errors';
import { acceptPlugin } from '../runtime/plugin/plugin-accept';
import { CodecHarness, Mutation } from '../sdk/harness/codec-harness';
import { PLUGIN_DIR, ROOT, TEST_PLUGIN_DIR } from './helpers/paths';

const LIMITS = { maxFileBytes: 32 * 1024 ** 2, maxMemoryBytes: 512 * 1024 ** 2, fuelPerCall: 200_000_000 };
const NO_ENCODE = join(TEST_PLUGIN_DIR, 'id-no-encode.wasm');
const ID_RULE = /declares request_id correlation but its encode returned UNCHANGED for a SET_REQUEST_ID mutation: override Codec\.encode/;

describe('codec authors: request ids must be rewritten', function () {
  this.timeout(30_000);

  it('a request-id codec without encode is refused at load, saying what to implement', async () => {
    await assert.rejects(acceptPlugin(NO_ENCODE, LIMITS), (err: unknown) => {
      assert.ok(isMeltemiError(err, 'MELTEMI_PLUGIN_INVALID'), String(err));
      assert.match((err as Error).message, /id-no-encode\.wasm/);
      assert.match((err as Error).message, ID_RULE);
      return true;
    });
  });

  it('the harness refuses the same codec on a real frame, as the proxy would', async () => {
    const h = await CodecHarness.load(NO_ENCODE);
    const frame = Buffer.from([0, 0, 0, 10, 0, 0, 0, 7, 0x68, 0x69]);
    assert.equal(h.decode(frame).frames[0].requestId, 7n);
    assert.throws(() => h.encode(frame, new Mutation().setRequestId(42n)), ID_RULE);
    assert.deepEqual(h.encode(frame), frame, 'without a new id, unchanged is fine');
    h.close();
  });

  const codecs = [join(PLUGIN_DIR, 'dubbo.wasm'), join(PLUGIN_DIR, 'thrift.wasm'), join(TEST_PLUGIN_DIR, 'kv.wasm'), join(ROOT, 'build', 'example-plugins', 'awesomerpc.wasm')];
  for (const file of codecs) {
    it(`${file.slice(ROOT.length + 1)} rewrites ids and loads`, async () => {
      const accepted = await acceptPlugin(file, LIMITS);
      assert.equal(accepted.unchanged, false);
      if (!accepted.unchanged) assert.equal(accepted.descriptor.correlation, 'request_id');
    });
  }
});
