// What a codec author meets: a request-id codec that does not rewrite ids is refused at load and
// by the harness (not discovered as timeouts in production), and the first-party request-id
// codecs pass the same check; `meltemi new codec` scaffolds a project outside this repository
// that builds and tests on its own; one test file runs without --no-config.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isMeltemiError } from '../runtime/core/errors';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ConsoleLogger } from '../runtime/core/logger';
import { MessageType } from '../runtime/wasm/abi';
import { CodecPlugin } from '../runtime/codec/codec-plugin';
import { acceptPlugin } from '../runtime/plugin/plugin-accept';
import { compilePlugin } from '../runtime/plugin/plugin-loader';
import { CodecHarness, Mutation } from '../sdk/harness/codec-harness';
import { newCodecProject, npmTest } from './helpers/codec-project';
import { MELTEMI_BIN, PLUGIN_DIR, ROOT, TEST_PLUGIN_DIR } from './helpers/paths';

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

  it('the harness refuses it at load with the same reason, as the proxy would', async () => {
    await assert.rejects(CodecHarness.load(NO_ENCODE), ID_RULE);
  });

  it('on a real frame, "unchanged" for a renumbered id is an ABI violation (a codec that passed the probe)', () => {
    const plugin = new CodecPlugin(compilePlugin(NO_ENCODE, readFileSync(NO_ENCODE), new ConsoleLogger('silent')), new ConsoleLogger('silent'));
    const ctx = plugin.open(false, Buffer.alloc(0));
    const frame = Buffer.from([0, 0, 0, 10, 0, 0, 0, 7, 0x68, 0x69]);
    assert.equal(ctx.decode(frame, 0).frames[0].requestId, 7);
    assert.throws(() => ctx.encode(frame, new Mutation().setRequestId(42n).encode(), MessageType.REQUEST, false, true), (err: unknown) => isMeltemiError(err, 'MELTEMI_ABI_VIOLATION') && ID_RULE.test((err as Error).message));
    assert.equal(ctx.encode(frame, new Mutation().encode(), MessageType.REQUEST, false, false), null, 'without a new id, unchanged is fine');
    ctx.close();
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

describe('codec authors: `meltemi new codec` makes a project of their own', function () {
  this.timeout(240_000);

  it('the scaffolded project builds its codec and passes its own harness test, outside this repository', () => {
    const { dir, created } = newCodecProject('acme-rpc');
    assert.equal(created.status, 0, created.stderr);
    assert.ok(!dir.startsWith(ROOT), 'outside the repository');
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    assert.equal(pkg.devDependencies.meltemi, `file:${ROOT}`);
    const run = npmTest(dir);
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /# pass 3\n# fail 0/);
  });

  it('`meltemi new filter` scaffolds a filter project that builds and passes its own filter-harness test', () => {
    const { dir, created } = newCodecProject('deny-list', 'filter');
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /created the filter project/);
    const run = npmTest(dir);
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /# pass 2\n# fail 0/);
  });

  const refusals: Array<[string, string[], RegExp]> = [
    ['a name that is not a protocol name', ['new', 'codec', 'Acme RPC'], /NAME must match/],
    ['no name', ['new', 'codec'], /NAME must match/],
    ['a folder that is not empty', ['new', 'codec', 'acme', '--dir', tmpdir()], /exists and is not empty; nothing was written/],
    ['a folder inside meltemi\'s own', ['new', 'codec', 'acme', '--dir', join(ROOT, 'examples', 'acme')], /is inside meltemi's own folder; a codec project lives beside it: --dir \.\.\/acme/],
    ['an unknown kind', ['new', 'transport', 'x'], /"meltemi new codec NAME" or "meltemi new filter NAME"/],
  ];
  for (const [what, args, message] of refusals) {
    it(`refuses ${what}`, () => {
      const r = spawnSync(process.execPath, [MELTEMI_BIN, ...args], { encoding: 'utf8' });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, message);
    });
  }
});

describe('running one test file needs no --no-config', () => {
  it('mocha given one file runs only that file', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js'), '--dry-run', '--reporter', 'json', join(ROOT, 'build', 'test', 'wasm-memory-limit.test.js')], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const files = new Set((JSON.parse(r.stdout) as { tests: Array<{ file: string }> }).tests.map((t) => t.file));
    assert.deepEqual([...files], [join(ROOT, 'build', 'test', 'wasm-memory-limit.test.js')]);
  });
});
