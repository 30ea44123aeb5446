// The Memcached codec end to end: two real memcached servers (Debian's), the memcache-client
// text-protocol client and memjs (binary protocol), through meltemi. Keys starting with
// "session:" route to server b, the rest to a; `mcbin` is a listener whose shared upstream
// connections speak binary; `dead` routes to a port nothing listens on.

import assert from 'node:assert/strict';
import net from 'node:net';
import { MemcacheClient } from 'memcache-client';
import memjs from 'memjs';
import type { Meltemi } from '../runtime/server';
import { MemcachedServer, binaryDone, binaryPackets, binaryRequest, rawExchange, rawExchangeBytes, textDone } from './helpers/memcached-server';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { freePort } from './helpers/ports';
import { requirePeer } from './helpers/peers';
import { memcachedCorpus } from './fuzz/corpus';
import { mutate, Rng } from './fuzz/engine';

const routes = `
    route_config:
      routes:
        - name: sessions
          match: { metadata: [ { name: key, prefix_match: "session:" } ] }
          route: { cluster: b }
        - name: default
          route: { cluster: a }`;

describe('memcached: memcached servers through meltemi', function () {
  this.timeout(60_000);
  let a: MemcachedServer;
  let b: MemcachedServer;
  let proxy: Meltemi;
  let port: number;
  let binPort: number;
  let deadPort: number;
  let adminPort: number;
  const clients: Array<{ shutdown?: () => void; close?: () => void }> = [];

  const textClient = (p = port) => {
    const c = new MemcacheClient({ server: `127.0.0.1:${p}`, cmdTimeout: 5000, connectTimeout: 2000 });
    clients.push(c);
    return c;
  };
  const binaryClient = (p = binPort) => {
    const c = memjs.Client.create(`127.0.0.1:${p}`, { retries: 0, timeout: 5, conntimeout: 2, keepAlive: false });
    clients.push(c);
    return c;
  };

  before(async function () {
    await requirePeer(this, 'memcached', ['-V'], 'apt-get install memcached');
    [a, b] = await Promise.all([MemcachedServer.start(), MemcachedServer.start()]);
    const unused = await freePort();
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: build/plugins }
listeners:
  - name: mc
    port: 0
    protocol: memcached${routes}
  - name: mcbin
    port: 0
    protocol: memcached
    codec_config: { protocol: binary }${routes}
  - name: dead
    port: 0
    protocol: memcached
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
    port = portOf(proxy, 'mc');
    binPort = portOf(proxy, 'mcbin');
    deadPort = portOf(proxy, 'dead');
    adminPort = proxy.admin!.port;
  });

  after(async () => {
    for (const c of clients) {
      c.shutdown?.();
      c.close?.();
    }
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('text protocol (memcache-client): set, get, cas, incr, delete and noreply, each key on the server its prefix names', async () => {
    const c = textClient();
    await c.set('plain:1', 'alpha');
    await c.set('session:1', 'beta');
    assert.equal((await c.get<string>('plain:1')).value, 'alpha');
    assert.equal((await c.get<string>('session:1')).value, 'beta');
    // Where each key went, asked of the servers directly.
    assert.match(await a.direct('get plain:1\r\n'), /^VALUE plain:1 \d+ 5\r\nalpha\r\nEND\r\n$/);
    assert.equal(await a.direct('get session:1\r\n'), 'END\r\n');
    assert.match(await b.direct('get session:1\r\n'), /^VALUE session:1 \d+ 4\r\nbeta\r\nEND\r\n$/);
    const got = await c.gets<string>('session:1');
    await c.cas('session:1', 'gamma', { casUniq: got.casUniq! });
    assert.equal((await c.get<string>('session:1')).value, 'gamma');
    await assert.rejects(c.cas('session:1', 'delta', { casUniq: got.casUniq! }), /EXISTS/);
    await c.set('counter', '41');
    assert.equal(await c.incr('counter', 1), '42');
    await c.delete('counter');
    assert.equal((await c.get('counter')), undefined);
    // noreply: one-way; the next request on the same connection sees it.
    await c.set('session:quiet', 'shh', { noreply: true });
    assert.equal((await c.get<string>('session:quiet')).value, 'shh');
  });

  it('a multiget goes to the route of its first key: keys of one route come back together', async () => {
    const c = textClient();
    await Promise.all([c.set('session:m1', 'one'), c.set('session:m2', 'two'), c.set('plain:m3', 'three')]);
    const many: Record<string, { value: unknown }> = await c.get<Record<string, { tokens: string[]; value: string }>>(['session:m1', 'session:m2']);
    assert.deepEqual(Object.fromEntries(Object.entries(many).map(([k, v]) => [k, v.value])), { 'session:m1': 'one', 'session:m2': 'two' });
    // Keys of two routes: the first key's server answers for all (a proxy without fan-out).
    const mixed = await rawExchange(port, 'get session:m1 plain:m3\r\n', textDone(1));
    assert.match(mixed, /^VALUE session:m1 \d+ 3\r\none\r\nEND\r\n$/);
  });

  it('meta commands, and a run of quiet ones ended by mn, answered whole', async () => {
    await rawExchange(port, 'ms meta:a 2 T0\r\nhi\r\n', textDone(1));
    const reply = await rawExchange(port, 'mg meta:a v q k\r\nmg meta:missing v q\r\nmd meta:missing q\r\nmn\r\nmg meta:a s v\r\n', textDone(0, ['MN\r\n', 's2\r\nhi\r\n']));
    assert.equal(reply, 'VA 2 kmeta:a\r\nhi\r\nNF\r\nMN\r\nVA 2 s2\r\nhi\r\n');
  });

  it('binary protocol (memjs): set, get, increment, delete and stats, routed by key', async () => {
    const c = binaryClient();
    await c.set('plain:b1', 'bin-a', {});
    await c.set('session:b1', 'bin-b', {});
    assert.equal((await c.get('plain:b1')).value?.toString(), 'bin-a');
    assert.equal((await c.get('session:b1')).value?.toString(), 'bin-b');
    assert.match(await b.direct('get session:b1\r\n'), /bin-b/);
    assert.equal(await a.direct('get session:b1\r\n'), 'END\r\n');
    await c.set('n', '10', {});
    const inc = await c.increment('n', 5, {});
    assert.equal(inc.value, 15);
    assert.equal(await c.delete('n'), true);
    assert.equal((await c.get('n')).value, null);
    const stats = await new Promise<Record<string, string>>((resolve, reject) => c.stats((err, _server, s) => (err ? reject(err) : resolve(s ?? {}))));
    assert.ok(Number(stats.pid) > 0, 'stats arrive whole, up to the empty one');
  });

  it('binary opaques: 400 concurrent requests from 4 memjs clients over shared upstream connections each get their own answer', async () => {
    const cs = Array.from({ length: 4 }, () => binaryClient());
    await Promise.all(Array.from({ length: 40 }, (_, i) => cs[i % 4].set(`${i % 2 ? 'session:' : ''}op${i}`, `v${i}`, {})));
    const results = await Promise.all(Array.from({ length: 400 }, async (_, n) => {
      const i = n % 40;
      const r = await cs[n % 4].get(`${i % 2 ? 'session:' : ''}op${i}`);
      return [i, r.value?.toString()] as const;
    }));
    for (const [i, v] of results) assert.equal(v, `v${i}`);
  });

  it('a binary quiet run: hits come back with their own opaques, misses say nothing, the noop ends it', async () => {
    await rawExchangeBytes(binPort, binaryRequest(0x01, { key: 'q1', extras: Buffer.alloc(8), value: 'one', opaque: 1 }), binaryDone(1));
    const run = Buffer.concat([
      binaryRequest(0x0d, { key: 'q1', opaque: 7 }), binaryRequest(0x0d, { key: 'q-missing', opaque: 8 }), binaryRequest(0x0a, { opaque: 9 }),
    ]);
    const { packets, complete } = binaryPackets(await rawExchangeBytes(binPort, run, binaryDone(9)));
    assert.ok(complete);
    assert.deepEqual(packets.map((p) => [p.opcode, p.opaque, p.key, p.value]), [[0x0d, 7, 'q1', 'one'], [0x0a, 9, '', '']]);
  });

  it('malformed input closes only its own connection, with a protocol error reply, and the shared upstream connection serves on', async () => {
    const healthy = textClient();
    await healthy.set('h', 'ok');
    const text = await rawExchange(port, 'set k 0 0 -1\r\n', () => false);
    assert.match(text, /^CLIENT_ERROR meltemi: protocol error: .*bad/);
    const bin = binaryPackets(await rawExchangeBytes(binPort, binaryRequest(0x01, { key: 'k', value: 'no-extras', opaque: 77 }), () => false)).packets;
    assert.deepEqual(bin.map((p) => [p.status, p.opaque]), [[0x04, 77]]);
    assert.match(bin[0].value, /malformed SET packet/);
    assert.equal((await healthy.get<string>('h')).value, 'ok');
  });

  it('quit closes the client that sent it, not the upstream connection others share', async () => {
    const other = textClient();
    await other.set('stay', 'here');
    const s = await rawExchange(port, 'get stay\r\nquit\r\n', () => false);
    assert.match(s, /^VALUE stay \d+ 4\r\nhere\r\nEND\r\n$/, 'answered, then closed');
    assert.equal((await other.get<string>('stay')).value, 'here');
  });

  it('no healthy upstream: SERVER_ERROR in text, temporary failure (0x86) in binary', async () => {
    assert.match(await rawExchange(deadPort, 'get x\r\n', textDone(1)), /^SERVER_ERROR meltemi: /);
    const [p] = binaryPackets(await rawExchangeBytes(deadPort, binaryRequest(0x00, { key: 'x', opaque: 5 }), binaryDone(5))).packets;
    assert.deepEqual([p.status, p.opaque], [0x86, 5]);
  });

  it('a listener that speaks binary refuses text, naming codec_config.protocol', async () => {
    assert.match(await rawExchange(binPort, 'version\r\n', () => false), /^CLIENT_ERROR .*speaks the binary protocol \(codec_config.protocol\)/);
  });

  it('a codec_config the codec refuses fails the start, naming the field', async () => {
    await assert.rejects(startProxy(`
plugins: { directory: build/plugins }
listeners:
  - name: bad
    port: 0
    protocol: memcached
    codec_config: { protocol: udp }
    route_config: { routes: [ { route: { cluster: a } } ] }
clusters: [ { name: a, endpoints: [ { address: 127.0.0.1, port: ${a.port} } ] } ]
`), /codec_config.*protocol must be "auto", "text" or "binary", not "udp"/);
  });

  it('20 text clients share the upstream pool; requests are counted by command', async () => {
    const before = Number(/STAT curr_connections (\d+)/.exec(await a.direct('stats\r\n', 1))![1]);
    const cs = Array.from({ length: 20 }, () => textClient());
    await Promise.all(cs.map((c, i) => c.set(`pool:${i}`, String(i))));
    const values = await Promise.all(cs.map((c, i) => c.get<string>(`pool:${i}`)));
    values.forEach((v, i) => assert.equal(v.value, String(i)));
    const after = Number(/STAT curr_connections (\d+)/.exec(await a.direct('stats\r\n', 1))![1]);
    assert.ok(after - before <= 2, `upstream connections opened for 20 clients: ${after - before}`);
    const metrics = (await adminGet(adminPort, '/metrics')).body;
    assert.ok(metricSum(metrics, 'meltemi_requests_by_command_total', { listener: 'mc', command: 'GET' }) >= 20);
    assert.ok(metricSum(metrics, 'meltemi_requests_by_command_total', { listener: 'mcbin', command: 'SET' }) >= 1);
  });

  it('200 connections of mutated frames to both listeners: each closes alone, a healthy client is unaffected, no trap', async () => {
    const rng = new Rng(20261123);
    const seeds = memcachedCorpus().requests;
    const healthy = textClient();
    await healthy.set('healthy', 'yes');
    for (const target of [port, binPort]) {
      await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
        const s = net.connect(target, '127.0.0.1');
        s.on('error', () => {});
        s.on('close', () => resolve());
        s.on('data', () => {});
        s.on('connect', () => s.end(Buffer.concat(Array.from({ length: 1 + rng.below(4) }, () => mutate(rng, seeds[rng.below(seeds.length)], seeds)))));
        setTimeout(() => s.destroy(), 2000).unref();
      })));
      assert.equal((await healthy.get<string>('healthy')).value, 'yes');
    }
    assert.equal(proxy.listener('mc')!.context.plugin.traps, 0);
    assert.equal(proxy.listener('mcbin')!.context.plugin.traps, 0);
    // The servers are still whole: a fresh client reads what the healthy one wrote.
    assert.equal((await textClient().get<string>('healthy')).value, 'yes');
  });
});
