// The filter harness (meltemi/filter-harness) runs a filter over metadata fixtures the way the
// proxy calls it: the first-party filters' decisions, timers fired on demand, config refusals,
// and a codec file refused as not a filter.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ErrorKind, FilterHarness } from '../sdk/harness/filter-harness';
import { PLUGIN_DIR } from './helpers/paths';

const RATELIMIT = join(PLUGIN_DIR, 'local-ratelimit.wasm');
const FAULT = join(PLUGIN_DIR, 'fault.wasm');

describe('filter harness', function () {
  this.timeout(20_000);

  it('local-ratelimit: a bucket of 3 lets 3 requests through, then answers over-limit; conditions by metadata', async () => {
    const f = await FilterHarness.load(RATELIMIT, {
      tokenBucket: { maxTokens: 3, tokensPerFill: 3, fillInterval: '60s' },
      conditions: [{ match: { attributes: { method: { exact: 'free' } } }, tokenBucket: { maxTokens: 1000, fillInterval: '1s' } }],
    });
    assert.equal(f.descriptor.kind, 'filter');
    const actions = Array.from({ length: 5 }, () => f.request([['method', 'paid']]).action);
    assert.deepEqual(actions, ['continue', 'continue', 'continue', 'local_reply', 'local_reply']);
    const limited = f.request([['method', 'paid']]);
    assert.deepEqual([limited.replyKind, limited.replyMessage], [ErrorKind.OVER_LIMIT, 'meltemi: rate limited']);
    assert.equal(f.request([['method', 'free']]).action, 'continue', 'a condition\'s own bucket');
  });

  it('fault: a delay pauses with a timer; firing it continues, or aborts when both apply', async () => {
    const f = await FilterHarness.load(FAULT, { delay: { fixedDelay: '250ms', match: { attributes: { method: { prefix: 'slow' } } } }, abort: { percentage: 100, kind: 'timeout', message: 'x', match: { attributes: { method: { exact: 'slow-fail' } } } } });
    assert.equal(f.request([['method', 'fast']]).action, 'continue');
    const slow = f.request([['method', 'slow']]);
    assert.equal(slow.action, 'pause');
    assert.deepEqual(f.timers.map((t) => [t.req, t.delayMs]), [[slow.id, 250]]);
    assert.deepEqual({ ...f.fireTimer() }, { req: slow.id, action: 'continue', mutations: [] });
    const failing = f.request([['method', 'slow-fail']]);
    assert.equal(failing.action, 'pause');
    assert.deepEqual({ ...f.fireTimer() }, { req: failing.id, action: 'local_reply', mutations: [], replyKind: ErrorKind.TIMEOUT, replyMessage: 'x' });
  });

  const refusals: Array<[string, string, Record<string, unknown>, RegExp]> = [
    ['a rate limit without buckets', RATELIMIT, {}, /refused its config: needs tokenBucket or conditions/],
    ['a fault with a bad kind', FAULT, { abort: { kind: 'explode' } }, /abort\.kind must be one of/],
    ['a fault with an unparseable delay', FAULT, { delay: { fixedDelay: 'soon' } }, /delay\.fixedDelay must be a duration/],
    ['a codec', join(PLUGIN_DIR, 'redis.wasm'), {}, /redis\.wasm is a codec, not a filter/],
  ];
  for (const [what, file, config, message] of refusals) {
    it(`refuses ${what}`, async () => {
      await assert.rejects(FilterHarness.load(file, config), message);
    });
  }
});
