// The TARS codec end to end: two @tars/rpc servers serving the Echo servant and the framework's
// own client (Communicator) calling through meltemi. Calls whose context says `tenant: gold` route
// to server b, the rest to a; every route adds `routed-by: meltemi` to the context; `dead` routes
// to a port nothing listens on.

import assert from 'node:assert/strict';
import net from 'node:net';
import type { Meltemi } from '../runtime/server';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { freePort } from './helpers/ports';
import { TarsEchoClient, TarsEchoServer, decodeResponse, encodeRequest, splitPackets } from './helpers/tars-peers';
import { tarsCorpus } from './fuzz/tars-corpus';
import { mutate, Rng } from './fuzz/engine';

/** Sends `bytes` on a new connection; resolves with everything read until the proxy closes it. */
function exchange(port: number, bytes: Buffer, wantPackets = Infinity): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    const done = (closed: boolean) => { s.destroy(); resolve({ data: Buffer.concat(chunks), closed }); };
    s.on('data', (d) => {
      chunks.push(d);
      if (splitPackets(Buffer.concat(chunks)).packets.length >= wantPackets) done(false);
    });
    s.on('error', () => {});
    s.on('close', () => done(true));
    setTimeout(() => done(false), 3000).unref();
  });
}

describe('tars: @tars/rpc servers and clients through meltemi', function () {
  this.timeout(60_000);
  let a: TarsEchoServer;
  let b: TarsEchoServer;
  let proxy: Meltemi;
  let port: number;
  let deadPort: number;
  const clients: TarsEchoClient[] = [];
  const client = (p = port, timeoutMs = 5000) => {
    const c = new TarsEchoClient(p, timeoutMs);
    clients.push(c);
    return c;
  };

  before(async () => {
    [a, b] = await Promise.all([TarsEchoServer.start('a'), TarsEchoServer.start('b')]);
    const unused = await freePort();
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: build/plugins }
listeners:
  - name: tars
    port: 0
    protocol: tars
    route_config:
      routes:
        - name: gold
          match: { metadata: [ { name: tenant, exact_match: gold } ] }
          route: { cluster: b }
          request_mutation: [ { key: routed-by, value: meltemi } ]
        - name: default
          route: { cluster: a }
          request_mutation: [ { key: routed-by, value: meltemi } ]
  - name: dead
    port: 0
    protocol: tars
    route_config: { routes: [ { route: { cluster: dead } } ] }
clusters:
  - name: a
    endpoints: [ { address: 127.0.0.1, port: ${a.port} } ]
  - name: b
    endpoints: [ { address: 127.0.0.1, port: ${b.port} } ]
  - name: dead
    connect_timeout: 0.5s
    endpoints: [ { address: 127.0.0.1, port: ${unused} } ]
`);
    port = portOf(proxy, 'tars');
    deadPort = portOf(proxy, 'dead');
  });

  after(async () => {
    for (const c of clients) c.close();
    await proxy?.stop();
    a?.stop();
    b?.stop();
  });

  it('a call goes to the default route, with the route\'s context entry added where the servant reads it', async () => {
    const r = await client().call('echo', 'hello', { context: { caller: 'test' } });
    assert.deepEqual(r, { ret: 0, out: 'a:hello', context: {} });
    const seen = a.seen.at(-1)!;
    assert.equal(seen.func, 'echo');
    assert.deepEqual(seen.context, { caller: 'test', 'routed-by': 'meltemi' });
  });

  it('routes on a context entry, and the servant\'s response context comes back to the client', async () => {
    const r = await client().call('context', '', { context: { tenant: 'gold' } });
    assert.deepEqual(JSON.parse(r.out), { tenant: 'gold', 'routed-by': 'meltemi' });
    assert.deepEqual(r.context, { answered: 'b' });
  });

  it('600 concurrent calls from 3 clients share upstream connections, each answer matched to its call by rewritten id', async () => {
    const cs = [client(), client(), client()];
    const calls = Array.from({ length: 600 }, (_, i) => cs[i % 3].call(i % 5 === 0 ? 'slow' : 'echo', `n${i}`, i % 2 ? { context: { tenant: 'gold' } } : undefined)
      .then((r) => assert.equal(r.out, `${i % 2 ? 'b' : 'a'}:n${i}`)));
    await Promise.all(calls);
    const metrics = (await adminGet(proxy.admin!.port, '/metrics')).body;
    const opened = metricSum(metrics, 'meltemi_upstream_connections_total', { cluster: 'a' }) + metricSum(metrics, 'meltemi_upstream_connections_total', { cluster: 'b' });
    assert.ok(opened > 0 && opened <= 8, `upstream connections opened: ${opened}`);
  });

  it('a one-way call reaches the servant and waits for nothing', async () => {
    const before = a.seen.length;
    await client().call('note', 'fire-and-forget', { packetType: 1 });
    await a.waitFor(before + 1);
    assert.equal(a.seen.at(-1)!.arg, 'fire-and-forget');
    assert.deepEqual((await client().call('echo', 'after')).out, 'a:after');
  });

  it('tars_ping goes to the servant, and a function it lacks comes back as the framework\'s error', async () => {
    const c = client();
    assert.equal((await c.call('tars_ping', '')).ret, 0);
    assert.equal(a.seen.at(-1)!.func, 'tars_ping');
    await assert.rejects(c.call('missing', 'x'), (e: Error & { code?: number }) => e.code === -3);
  });

  it('no upstream: the client gets a TARS error code, not a hang', async () => {
    await assert.rejects(client(deadPort).call('echo', 'x'), (e: Error & { code?: number }) => e.code === -8 || e.code === -10);
  });

  it('a malformed packet is answered with a decode error and closes only its own connection', async () => {
    const good = encodeRequest({ id: 41, func: 'echo' });
    const bad = Buffer.from(good);
    bad[4] = 0x4e; // a field of an unknown type
    const r = await exchange(port, Buffer.concat([good, bad]));
    const { packets } = splitPackets(r.data);
    assert.equal(packets.length, 2, r.data.toString('hex'));
    const answers = packets.map(decodeResponse).sort((x, y) => x.iRequestId - y.iRequestId);
    assert.equal(answers[0].iRequestId, 0);
    assert.equal(answers[0].iRet, -1);
    assert.match(answers[0].sResultDesc, /unknown field type/);
    assert.equal(answers[1].iRequestId, 41);
    assert.equal(answers[1].iRet, 0);
    assert.ok(r.closed);
    assert.equal((await client().call('echo', 'still')).out, 'a:still');
  });

  it('200 connections of mutated packets: each closes alone, a healthy client is unaffected, no trap', async () => {
    const rng = new Rng(20261123);
    const seeds = tarsCorpus().requests;
    const healthy = client();
    await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => resolve());
      s.on('data', () => {});
      s.on('connect', () => s.end(Buffer.concat(Array.from({ length: 1 + rng.below(4) }, () => mutate(rng, seeds[rng.below(seeds.length)], seeds)))));
      setTimeout(() => s.destroy(), 2000).unref();
    })));
    assert.equal((await healthy.call('echo', 'healthy')).out, 'a:healthy');
    assert.equal(proxy.listener('tars')!.context.plugin.traps, 0);
  });

  it('counts requests per route', async () => {
    const metrics = (await adminGet(proxy.admin!.port, '/metrics')).body;
    assert.ok(metricSum(metrics, 'meltemi_requests_total', { listener: 'tars', route: 'gold' }) >= 300);
    assert.ok(metricSum(metrics, 'meltemi_requests_total', { listener: 'tars', route: 'default' }) >= 300);
  });
});
