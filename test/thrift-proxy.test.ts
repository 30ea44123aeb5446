// Apache Thrift clients and servers (generated code, the `thrift` npm library) through meltemi,
// in all four transport x protocol combinations, plus a multiplexed server: method routing,
// concurrent calls (seqids renumbered on the shared upstream connection), large payloads,
// declared exceptions, one-way calls and TApplicationException local replies.

import assert from 'node:assert/strict';
import type { Meltemi } from '../runtime/server';
import { PLUGIN_DIR } from './helpers/paths';
import { adminGet, metricSum, portOf, startProxy } from './helpers/proxy';
import { startThriftServer, thriftClient, ThriftClients, ThriftServer, Wire } from './helpers/thrift-peers';

const WIRES: Wire[] = [
  { transport: 'framed', protocol: 'binary' },
  { transport: 'framed', protocol: 'compact' },
  { transport: 'buffered', protocol: 'binary' },
  { transport: 'buffered', protocol: 'compact' },
];

for (const wire of WIRES) {
  describe(`thrift ${wire.transport}/${wire.protocol} through meltemi`, function () {
    this.timeout(30_000);
    let v1: ThriftServer;
    let v2: ThriftServer;
    let proxy: Meltemi;
    const clients: ThriftClients[] = [];
    const connect = async (listener = 'thrift') => {
      const c = await thriftClient(portOf(proxy, listener), wire);
      clients.push(c);
      return c;
    };

    before(async () => {
      [v1, v2] = await Promise.all([startThriftServer('v1', wire), startThriftServer('v2', wire)]);
      proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: thrift
    port: 0
    protocol: thrift
    route_config:
      routes:
        - name: big-to-v2
          match: { metadata: [ { name: method, exact_match: big } ] }
          route: { cluster: v2 }
        - name: default
          route: { cluster: v1 }
  - name: weighted
    port: 0
    protocol: thrift
    route_config:
      routes:
        - route: { weighted_clusters: { clusters: [ { name: v1, weight: 20 }, { name: v2, weight: 80 } ] } }
  - name: strict
    port: 0
    protocol: thrift
    route_config:
      routes:
        - name: who-only
          match: { metadata: [ { name: method, exact_match: who } ] }
          route: { cluster: v1 }
clusters:
  - name: v1
    endpoints: [ { address: 127.0.0.1, port: ${v1.port} } ]
  - name: v2
    endpoints: [ { address: 127.0.0.1, port: ${v2.port} } ]
`);
    });

    after(async () => {
      for (const c of clients) c.close();
      await proxy?.stop();
      await Promise.all([v1?.stop(), v2?.stop()]);
    });

    it('calls with containers round-trip', async () => {
      const { echo } = await connect();
      const reply = await echo.echo('hi', { k: 'v' }, [1, 2, 3], ['x']);
      assert.equal(reply, 'v1:hi:[["k","v"]]:1,2,3:["x"]');
      assert.equal(await echo.who(), 'v1');
    });

    it('routes by method: big() goes to v2 and 1 MB comes back intact', async () => {
      const { echo } = await connect();
      const data = Buffer.alloc(1 << 20, 7);
      const reply: Buffer = await echo.big(data);
      assert.equal(reply.length, data.length + 2);
      assert.ok(reply.subarray(0, data.length).equals(data));
      assert.equal(reply.subarray(data.length).toString(), 'v2');
    });

    it('200 concurrent calls on one connection, and on 10 connections sharing one upstream', async () => {
      const one = await connect();
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => one.echo.echo(`m${i}`, {}, [i], [])));
      results.forEach((r: string, i: number) => assert.ok(r.startsWith(`v1:m${i}:`), r));
      const many = await Promise.all(Array.from({ length: 10 }, () => connect()));
      const all = await Promise.all(many.flatMap((c, n) => Array.from({ length: 20 }, (_, i) => c.echo.echo(`c${n}-${i}`, {}, [], []).then((r: string) => [r, `c${n}-${i}`]))));
      for (const [r, want] of all) assert.ok(r.startsWith(`v1:${want}:`), `${r} answers ${want}`);
    });

    it('weighted 20/80 over 2000 calls lands within ±5 points', async () => {
      const { echo } = await connect('weighted');
      const answers: string[] = await Promise.all(Array.from({ length: 2000 }, () => echo.who()));
      const share = answers.filter((a) => a === 'v1').length / 2000;
      assert.ok(Math.abs(share - 0.2) <= 0.05, `v1 share ${share}`);
    });

    it('declared exceptions reach the client and count as errors', async () => {
      const { echo } = await connect();
      const before = metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_request_errors_total', { listener: 'thrift' });
      await assert.rejects(echo.fail('nope'), (err: { why?: string }) => err.why === 'v1:nope');
      const after = metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_request_errors_total', { listener: 'thrift' });
      assert.equal(after - before, 1);
    });

    it('one-way calls are forwarded', async () => {
      const { echo } = await connect();
      await echo.notify('fire-and-forget');
      assert.equal(await echo.who(), 'v1'); // a later call on the same connection flushes the order
      const deadline = Date.now() + 2000;
      while (!v1.notes.includes('fire-and-forget') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(v1.notes.includes('fire-and-forget'));
    });

    it('no route: a TApplicationException with the reason, and the connection keeps working', async () => {
      const { echo } = await connect('strict');
      await assert.rejects(echo.echo('x', {}, [], []), (err: { name?: string; message?: string; type?: number }) => {
        assert.equal(err.name, 'TApplicationException');
        assert.equal(err.message, 'meltemi: no route matched the request');
        assert.equal(err.type, 1); // UNKNOWN_METHOD
        return true;
      });
      assert.equal(await echo.who(), 'v1');
    });
  });
}

describe('thrift multiplexed (framed/binary) through meltemi', function () {
  this.timeout(30_000);
  const wire: Wire = { transport: 'framed', protocol: 'binary' };
  let a: ThriftServer;
  let b: ThriftServer;
  let proxy: Meltemi;
  let client: ThriftClients;

  before(async () => {
    [a, b] = await Promise.all([startThriftServer('a', wire, { multiplexed: true }), startThriftServer('b', wire, { multiplexed: true })]);
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: mux
    port: 0
    protocol: thrift
    route_config:
      routes:
        - name: calc
          match: { metadata: [ { name: service, exact_match: Calc } ] }
          route: { cluster: b }
        - name: rest
          route: { cluster: a }
clusters:
  - { name: a, endpoints: [ { address: 127.0.0.1, port: ${a.port} } ] }
  - { name: b, endpoints: [ { address: 127.0.0.1, port: ${b.port} } ] }
`);
    client = await thriftClient(portOf(proxy, 'mux'), wire, { multiplexed: true });
  });

  after(async () => {
    client?.close();
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('routes on the service name: Calc to b, Echo to a, over one client connection', async () => {
    assert.equal(await client.calc.who(), 'b-calc');
    assert.equal(await client.calc.add(2, 3), 5);
    assert.equal(await client.echo.who(), 'a');
  });
});
