// The AwesomeRPC tutorial (examples/awesomerpc/README.md) can be completed from the page alone:
// the files it prints are written into a project made by `meltemi new codec`, whose own build
// and tests pass, and the proxy then routes with the tutorial's config. The codec on the page is
// the example codec byte for byte, and the page's line count is that file's.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../runtime/config/load';
import { Meltemi } from '../runtime/server';
import { CaptureLogger } from './helpers/capture-logger';
import { newCodecProject, npmTest } from './helpers/codec-project';
import { ROOT } from './helpers/paths';
import { portOf } from './helpers/proxy';

/* eslint-disable @typescript-eslint/no-require-imports */
const EXAMPLE = join(ROOT, 'examples', 'awesomerpc');
const { startServer } = require(join(EXAMPLE, 'server.js'));
const { connect } = require(join(EXAMPLE, 'client.js'));

const PAGE = readFileSync(join(EXAMPLE, 'README.md'), 'utf8');
/** The files the page prints whole, each after a `<!-- file: PATH -->` marker. */
const FILES = new Map([...PAGE.matchAll(/<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)```/g)].map((m) => [m[1], m[2]]));

describe('tutorial: AwesomeRPC from the page alone', function () {
  this.timeout(240_000);
  let dir: string;

  it('prints every file whole: the codec is examples/awesomerpc/codec/index.ts, and its line count is right', () => {
    assert.deepEqual([...FILES.keys()], ['assembly/index.ts', 'test/awesomerpc.test.mjs', 'meltemi.yaml']);
    const codec = FILES.get('assembly/index.ts')!;
    assert.equal(codec, readFileSync(join(EXAMPLE, 'codec', 'index.ts'), 'utf8'));
    const stated = [...PAGE.matchAll(/(\d+) lines/g)].map((m) => Number(m[1]));
    assert.deepEqual(stated, [codec.split('\n').length - 1], 'one line count on the page, the file\'s');
    assert.doesNotMatch(PAGE, /comes next|\/\* constants \*\/|TODO/);
  });

  it('a project from `meltemi new codec` with the page\'s files builds and passes the page\'s tests', () => {
    const project = newCodecProject('awesomerpc');
    assert.equal(project.created.status, 0, project.created.stderr);
    dir = project.dir;
    for (const [path, text] of FILES) writeFileSync(join(dir, path), text);
    const run = npmTest(dir);
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /# pass 3\n# fail 0/);
  });

  describe('the page\'s meltemi.yaml, with the example server and client', () => {
    let v1: net.Server;
    let v2: net.Server;
    let proxy: Meltemi;

    before(async function () {
      if (!dir) this.skip();
      [v1, v2] = await Promise.all([startServer('v1', 0), startServer('v2', 0)]);
      const config = parse(FILES.get('meltemi.yaml')!);
      config.admin.port = 0;
      config.listeners[0].port = 0;
      config.clusters[0].endpoints[0].port = (v1.address() as net.AddressInfo).port;
      config.clusters[1].endpoints[0].port = (v2.address() as net.AddressInfo).port;
      proxy = new Meltemi(parseConfig(stringify(config), dir), { logger: new CaptureLogger() });
      await proxy.start();
    });

    after(async () => {
      await proxy?.stop();
      await Promise.all([v1, v2].map((s) => new Promise((r) => (s ? s.close(r) : r(undefined)))));
    });

    it('routes command 3 to v2 and the rest to v1, with the codec the project built', async () => {
      const client = await connect(portOf(proxy, 'awesomerpc'));
      assert.equal((await client.call(2)).body.toString(), 'v1');
      assert.equal((await client.call(3, 'hello')).body.toString(), 'v2:HELLO');
      client.close();
    });
  });
});
