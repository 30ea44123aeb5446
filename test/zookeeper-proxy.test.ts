// The ZooKeeper codec end to end: two real ZooKeeper servers (Debian's, standalone; two separate
// ensembles) and node-zookeeper-client through meltemi. Listener `zk` serves ensemble a: paths
// under /locked have a route of their own, on which authz refuses writes, and paths under
// /elsewhere route to ensemble b, which a session on a cannot reach; listener `zkb` serves
// ensemble b; `dead` routes to a port nothing listens on.

import assert from 'node:assert/strict';
import net from 'node:net';
import type { Meltemi } from '../runtime/server';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { freePort } from './helpers/ports';
import { requirePeer } from './helpers/peers';
import { ZK_SERVER, ZooKeeperServer, connectRequest, request, splitPackets } from './helpers/zookeeper-peers';
import { zookeeperCorpus } from './fuzz/zookeeper-corpus';
import { mutate, Rng } from './fuzz/engine';

/* eslint-disable @typescript-eslint/no-require-imports */
const zookeeper = require('node-zookeeper-client');

interface ZkClient {
  connect(): void;
  close(): void;
  once(event: string, fn: (...args: unknown[]) => void): void;
  getSessionId(): Buffer;
  create(path: string, data: Buffer | null, mode: number, cb: (err: ZkError | null, path: string) => void): void;
  getData(path: string, watcher: ((event: ZkEvent) => void) | null, cb: (err: ZkError | null, data: Buffer) => void): void;
  setData(path: string, data: Buffer, version: number, cb: (err: ZkError | null, stat: unknown) => void): void;
  exists(path: string, cb: (err: ZkError | null, stat: unknown) => void): void;
  getChildren(path: string, cb: (err: ZkError | null, children: string[]) => void): void;
}
interface ZkError extends Error { getCode(): number }
interface ZkEvent { getType(): number; getPath(): string; getName(): string }

const PERSISTENT = 0;
const EPHEMERAL = 1;

function call<T>(fn: (cb: (err: ZkError | null, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
}

/** Sends `bytes` on a new connection; resolves with what came back once the proxy closed it (or after 3 s). */
function exchange(port: number, bytes: Buffer[]): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => { for (const b of bytes) s.write(b); });
    const done = (closed: boolean) => { s.destroy(); resolve({ data: Buffer.concat(chunks), closed }); };
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => done(true));
    setTimeout(() => done(false), 3000).unref();
  });
}

describe('zookeeper: ZooKeeper servers through meltemi', function () {
  this.timeout(90_000);
  let a: ZooKeeperServer;
  let b: ZooKeeperServer;
  let proxy: Meltemi;
  let port: number;
  const clients: ZkClient[] = [];

  /** A connected client of `target` (the proxy's zk listener by default). */
  async function client(target = port): Promise<ZkClient> {
    const c: ZkClient = zookeeper.createClient(`127.0.0.1:${target}`, { sessionTimeout: 10_000, spinDelay: 200, retries: 0 });
    clients.push(c);
    const connected = new Promise<void>((resolve) => c.once('connected', () => resolve()));
    c.connect();
    await connected;
    return c;
  }

  before(async function () {
    await requirePeer(this, 'test', ['-x', ZK_SERVER], 'apt-get install zookeeper');
    [a, b] = await Promise.all([ZooKeeperServer.start(), ZooKeeperServer.start()]);
    const unused = await freePort();
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: build/plugins }
listeners:
  - name: zk
    port: 0
    protocol: zookeeper
    filters:
      - name: authz
        config:
          deny: [ { attributes: { path: { prefix: /locked }, command: { exact: setData } } } ]
    route_config:
      routes:
        - name: locked
          match: { metadata: [ { name: path, prefix_match: /locked } ] }
          route: { cluster: a }
        - name: elsewhere
          match: { metadata: [ { name: path, prefix_match: /elsewhere } ] }
          route: { cluster: b }
        - name: default
          route: { cluster: a }
  - name: zkb
    port: 0
    protocol: zookeeper
    route_config: { routes: [ { route: { cluster: b } } ] }
  - name: dead
    port: 0
    protocol: zookeeper
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
    port = portOf(proxy, 'zk');
  });

  after(async () => {
    for (const c of clients) c.close();
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('a session through meltemi: create, read, write and list, on the ensemble its listener routes to', async () => {
    const c = await client();
    assert.equal(await call<string>((cb) => c.create('/app', Buffer.from('v1'), PERSISTENT, cb)), '/app');
    assert.equal((await call<Buffer>((cb) => c.getData('/app', null, cb))).toString(), 'v1');
    await call((cb) => c.setData('/app', Buffer.from('v2'), -1, cb));
    await call((cb) => c.create('/app/child', null, PERSISTENT, cb));
    assert.deepEqual(await call<string[]>((cb) => c.getChildren('/app', cb)), ['child']);
    // Asked of the servers directly: the node lives on a, not b.
    const direct = await client(a.port);
    assert.equal((await call<Buffer>((cb) => direct.getData('/app', null, cb))).toString(), 'v2');
    const other = await client(portOf(proxy, 'zkb'));
    assert.equal(await call((cb) => other.exists('/app', cb)), null);
  });

  it('a watch event reaches the session that set the watch, and only it', async () => {
    const watcher = await client();
    const bystander = await client();
    const writer = await client();
    await call((cb) => writer.create('/watched', Buffer.from('0'), PERSISTENT, cb));
    await call((cb) => writer.create('/unwatched', Buffer.from('0'), PERSISTENT, cb));
    let fired!: Promise<ZkEvent>;
    await call<Buffer>((cb) => { fired = new Promise<ZkEvent>((resolve) => watcher.getData('/watched', resolve, cb)); });
    let bystanderEvents = 0;
    await call<Buffer>((cb) => bystander.getData('/unwatched', () => { bystanderEvents++; }, cb));
    await call((cb) => writer.setData('/watched', Buffer.from('1'), -1, cb));
    const event = await fired;
    assert.equal(event.getName(), 'NODE_DATA_CHANGED');
    assert.equal(event.getPath(), '/watched');
    // The watcher's session goes on after the event: its next request is answered in order.
    assert.equal((await call<Buffer>((cb) => watcher.getData('/watched', null, cb))).toString(), '1');
    // A change made on the server directly fires the bystander's watch, on its own session.
    const direct = await client(a.port);
    const bystanderFired = new Promise<void>((resolve) => { const t = setInterval(() => { if (bystanderEvents > 0) { clearInterval(t); resolve(); } }, 10); });
    await call((cb) => direct.setData('/unwatched', Buffer.from('1'), -1, cb));
    await bystanderFired;
    assert.equal(bystanderEvents, 1);
  });

  it('an ephemeral node lives as long as its session through meltemi', async () => {
    const owner = await client();
    await call((cb) => owner.create('/lease', null, EPHEMERAL, cb));
    const observer = await client();
    assert.notEqual(await call((cb) => observer.exists('/lease', cb)), null);
    let gone!: Promise<ZkEvent>;
    // The watch is set once getData is answered (a read of a node already gone would set none).
    await call<Buffer>((cb) => { gone = new Promise<ZkEvent>((resolve) => observer.getData('/lease', resolve, cb)); });
    owner.close(); // closeSession goes through to the server
    assert.equal((await gone).getName(), 'NODE_DELETED');
  });

  it('routes each request by its path prefix: authz refuses writes under /locked with NoAuth, the session goes on', async () => {
    const c = await client();
    await call((cb) => c.create('/locked', Buffer.from('x'), PERSISTENT, cb));
    await assert.rejects(call((cb) => c.setData('/locked', Buffer.from('y'), -1, cb)), (e: ZkError) => e.getCode() === -102);
    assert.equal((await call<Buffer>((cb) => c.getData('/locked', null, cb))).toString(), 'x');
    const metrics = (await adminGet(proxy.admin!.port, '/metrics')).body;
    // create and getData took the /locked route; the refused setData was answered before routing.
    assert.ok(metricSum(metrics, 'meltemi_requests_total', { listener: 'zk', route: 'locked' }) >= 2);
    assert.ok(metricSum(metrics, 'meltemi_filter_outcomes_total', { listener: 'zk', filter: 'authz', outcome: 'local_reply' }) >= 1);
    assert.ok(metricSum(metrics, 'meltemi_requests_by_command_total', { listener: 'zk', command: 'connect' }) >= 1);
  });

  it('a request whose path routes to another ensemble than its session\'s is refused (SystemError), not sent to the wrong one', async () => {
    const c = await client();
    await assert.rejects(call((cb) => c.exists('/elsewhere/x', cb)), (e: ZkError) => e.getCode() === -1);
    assert.notEqual(await call((cb) => c.exists('/', cb)), null);
    const metrics = (await adminGet(proxy.admin!.port, '/metrics')).body;
    assert.ok(metricSum(metrics, 'meltemi_local_replies_total', { listener: 'zk', kind: 'route_not_found' }) >= 1, metrics.split('\n').filter((l) => l.startsWith('meltemi_local_replies_total')).join('\n'));
  });

  it('20 sessions at once, 20 requests each: every session gets its own answers', async () => {
    const cs = await Promise.all(Array.from({ length: 20 }, () => client()));
    await call((cb) => cs[0].create('/many', null, PERSISTENT, cb));
    await Promise.all(cs.map(async (c, i) => {
      await call((cb) => c.create(`/many/s${i}`, Buffer.from(String(i)), PERSISTENT, cb));
      for (let k = 0; k < 19; k++) assert.equal((await call<Buffer>((cb) => c.getData(`/many/s${i}`, null, cb))).toString(), String(i));
    }));
    assert.equal((await call<string[]>((cb) => cs[0].getChildren('/many', cb))).length, 20);
  });

  it('no upstream: the connection closes without a byte, as a server that cannot take it does', async () => {
    const r = await exchange(portOf(proxy, 'dead'), [connectRequest()]);
    assert.ok(r.closed);
    assert.equal(r.data.length, 0);
  });

  it('a malformed packet after the handshake closes only its own session; four-letter words are refused', async () => {
    const bad = request(2, 'exists', { path: '/x', watch: false });
    bad.writeInt32BE(99, 12); // a path longer than the packet
    const r = await exchange(port, [connectRequest(), request(1, 'exists', { path: '/', watch: false }), bad]);
    assert.ok(r.closed);
    const packets = splitPackets(r.data);
    // The ConnectResponse and the exists reply, in order; then the close. A reply to the bad packet
    // would need its xid, which a packet that does not parse does not give.
    assert.equal(packets.length, 2, r.data.toString('hex'));
    assert.equal(packets[1].readInt32BE(4), 1);
    const ruok = await exchange(port, [Buffer.from('ruok')]);
    assert.ok(ruok.closed);
    assert.equal(ruok.data.toString(), '');
    const c = await client();
    assert.notEqual(await call((cb) => c.exists('/', cb)), null);
  });

  it('200 connections of mutated packets: each closes alone, a healthy session is unaffected, no trap', async () => {
    const rng = new Rng(20261123);
    const seeds = zookeeperCorpus().requests;
    const healthy = await client();
    await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => resolve());
      s.on('data', () => {});
      s.on('connect', () => s.end(Buffer.concat([connectRequest(), ...Array.from({ length: 1 + rng.below(4) }, () => mutate(rng, seeds[rng.below(seeds.length)], seeds))])));
      setTimeout(() => s.destroy(), 3000).unref();
    })));
    assert.notEqual(await call((cb) => healthy.exists('/', cb)), null);
    assert.equal(proxy.listener('zk')!.context.plugin.traps, 0);
  });
});
