// The filter harness (meltemi/filter-harness) runs a filter over metadata fixtures the way the
// proxy calls it: the first-party filters' decisions, timers fired on demand, config refusals,
// and a codec file refused as not a filter.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorKind, FilterHarness } from '../sdk/harness/filter-harness';
import { PLUGIN_DIR, ROOT } from './helpers/paths';

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

describe('the SDK reference\'s filter example', function () {
  this.timeout(60_000);

  it('compiles from the page as written, and does what the page says', async () => {
    const page = readFileSync(join(ROOT, 'sdk', 'README.md'), 'utf8');
    const section = page.slice(page.indexOf('## Filters'));
    const code = /```ts\n([\s\S]*?)```/.exec(section)![1];
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-filter-example-'));
    writeFileSync(join(dir, 'index.ts'), code);
    const out = join(dir, 'deny-command.wasm');
    const asc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'assemblyscript', 'bin', 'asc.js'), join(dir, 'index.ts'),
      '--config', join(ROOT, 'asconfig.json'), '--target', 'release', '--path', join(ROOT, 'build', 'asc-packages'), '-o', out], { encoding: 'utf8' });
    assert.equal(asc.status, 0, asc.stderr);
    const f = await FilterHarness.load(out, { command: 'FLUSHALL' });
    assert.deepEqual(f.request([['command', 'FLUSHALL']]), { id: 1, action: 'local_reply', mutations: [], replyKind: ErrorKind.PERMISSION_DENIED, replyMessage: 'not here' });
    assert.equal(f.request([['command', 'GET']]).action, 'continue');
    await assert.rejects(FilterHarness.load(out, {}), /refused its config: needs command/);
  });
});
