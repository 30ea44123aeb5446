// The AwesomeRPC tutorial (examples/awesomerpc) works as its README says: the example codec,
// config, server and client, routed by command through meltemi.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { CodecHarness } from '../sdk/harness/codec-harness';
import { MessageType } from '../runtime/wasm/abi';
import type { Meltemi } from '../runtime/server';
import { ROOT } from './helpers/paths';
import { portOf, startProxy } from './helpers/proxy';

/* eslint-disable @typescript-eslint/no-require-imports */
const EXAMPLE = join(ROOT, 'examples', 'awesomerpc');
const { startServer } = require(join(EXAMPLE, 'server.js'));
const { connect } = require(join(EXAMPLE, 'client.js'));
const { encode } = require(join(EXAMPLE, 'awesomerpc.js'));

describe('tutorial: AwesomeRPC', function () {
  this.timeout(20_000);
  let v1: net.Server;
  let v2: net.Server;
  let proxy: Meltemi;

  before(async () => {
    [v1, v2] = await Promise.all([startServer('v1', 0), startServer('v2', 0)]);
    // The example config as shipped, with free ports instead of the fixed ones.
    const config = parse(readFileSync(join(EXAMPLE, 'meltemi.yaml'), 'utf8'));
    config.admin.port = 0;
    config.plugins.directory = join(ROOT, 'build', 'example-plugins');
    config.listeners[0].port = 0;
    config.clusters[0].endpoints[0].port = (v1.address() as net.AddressInfo).port;
    config.clusters[1].endpoints[0].port = (v2.address() as net.AddressInfo).port;
    proxy = await startProxy(stringify(config));
  });

  after(async () => {
    await proxy?.stop();
    await Promise.all([v1, v2].map((s) => new Promise((r) => s?.close(r))));
  });

  it('routes by command: 3 (upper-case) to v2, the rest to v1', async () => {
    const client = await connect(portOf(proxy, 'awesomerpc'));
    assert.equal((await client.call(2)).body.toString(), 'v1');
    assert.equal((await client.call(3, 'shout')).body.toString(), 'v2:SHOUT');
    assert.equal((await client.call(1, 'echo me')).body.toString(), 'echo me');
    client.close();
  });

  it('answers heartbeats (command 0) in the proxy', async () => {
    const client = await connect(portOf(proxy, 'awesomerpc'));
    const r = await client.call(0);
    assert.deepEqual([r.cmd, r.code, r.body.length], [0, 0, 0]);
    client.close();
  });

  it('the codec frames packets wherever they are split, with a need hint', async () => {
    const codec = await CodecHarness.load(join(ROOT, 'build', 'example-plugins', 'awesomerpc.wasm'));
    const input = Buffer.concat([encode({ id: 7, cmd: 3, body: Buffer.from('abc') }), encode({ id: 8, cmd: 0 })]);
    const whole = codec.decode(input).frames.map((f) => [f.requestId, f.type, f.get('cmd')]);
    assert.deepEqual(whole, [[7n, MessageType.REQUEST, '3'], [8n, MessageType.HEARTBEAT, '0']]);
    for (let cut = 0; cut <= input.length; cut++) assert.deepEqual(codec.decodeSplit(input, cut).map((f) => [f.requestId, f.type, f.get('cmd')]), whole);
    assert.equal(codec.decode(input.subarray(0, 12)).need, 14);
    codec.close();
  });
});
