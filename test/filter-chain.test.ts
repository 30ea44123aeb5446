// The listener's filter chain on a live proxy (kv protocol, a real kv server): filters run in
// order on requests and in reverse on answers; each action — continue with a mutation, local
// reply, pause and resume, abort — does what it says; a filter that throws fails closed or open
// as configured; a request whose client leaves while paused is forgotten and never sent.

import assert from 'node:assert/strict';
import { BaseFilter, FailurePolicy, FilterStatus, FilterStatusValue } from '../runtime/filter/filter';
import type { FilterChain } from '../runtime/filter/filter-chain';
import type { ActiveRequest } from '../runtime/proxy/active-request';
import type { Meltemi } from '../runtime/server';
import { ErrorKind } from '../runtime/wasm/abi';
import { kvCall, kvFrame, KvDecoded, kvFrames } from './helpers/kv-frames';
import { KvServer } from './helpers/kv-server';
import { TEST_PLUGIN_DIR } from './helpers/paths';
import { portOf, RawClient, startProxy } from './helpers/proxy';

const method = (req: ActiveRequest) => req.meta?.get('method');

/** Waits for a condition on proxy-side state (not on bytes a client received). */
async function waitFor(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within 5 s: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const pair = (f: KvDecoded, key: string) => f.pairs.find(([k]) => k === key)?.[1];

/** A filter driven by a table: what to do for which method, and a log of what it saw. */
class ScriptedFilter extends BaseFilter {
  readonly seen: string[] = [];
  paused: Array<{ req: ActiveRequest; chain: FilterChain }> = [];

  constructor(readonly name: string, private readonly script: Record<string, (req: ActiveRequest) => FilterStatusValue> = {}, failurePolicy: FailurePolicy = 'fail_closed') {
    super();
    this.failurePolicy = failurePolicy;
  }

  onRequest(req: ActiveRequest, chain: FilterChain): FilterStatusValue {
    this.seen.push(`${this.name}>${method(req)}`);
    const status = this.script[method(req) ?? '']?.(req) ?? FilterStatus.CONTINUE;
    if (status === FilterStatus.PAUSE) this.paused.push({ req, chain });
    return status;
  }

  onResponse(req: ActiveRequest): FilterStatusValue {
    this.seen.push(`${this.name}<${method(req)}`);
    return method(req) === 'cut-response' && this.name === 'b' ? FilterStatus.ABORT : FilterStatus.CONTINUE;
  }

  onDone(req: ActiveRequest): void {
    this.seen.push(`${this.name}.done:${method(req) ?? '(gone)'}`);
  }
}

describe('filter chain on a live listener', function () {
  this.timeout(20_000);
  let server: KvServer;
  let proxy: Meltemi;
  const clients: RawClient[] = [];
  const client = () => {
    const c = new RawClient(portOf(proxy, 'kv'));
    clients.push(c);
    return c;
  };
  const frames = (c: RawClient) => kvFrames(c.received);
  async function call(c: RawClient, id: bigint, name: string): Promise<KvDecoded> {
    const got = await kvCall(c, id, [['method', name]]);
    if (!got) throw new Error(`connection closed before an answer to ${name}`);
    return got;
  }
  const use = (...filters: ScriptedFilter[]) => proxy.listener('kv')!.useFilters(filters);

  before(async () => {
    server = await KvServer.start('v1');
    proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(TEST_PLUGIN_DIR)} }
listeners:
  - name: kv
    port: 0
    protocol: kv
    route_config: { routes: [ { route: { cluster: v1 } } ] }
clusters:
  - { name: v1, endpoints: [ { address: 127.0.0.1, port: ${server.port} } ] }
`);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await proxy?.stop();
    await server?.stop();
  });

  it('requests pass the filters in order, answers come back in reverse, each filter is told when it is done', async () => {
    const a = new ScriptedFilter('a');
    const b = new ScriptedFilter('b');
    const c = new ScriptedFilter('c');
    use(a, b, c);
    const log: string[] = [];
    for (const f of [a, b, c]) f.seen.length = 0;
    const r = await call(client(), 1n, 'get');
    assert.equal(pair(r, 'server'), 'v1');
    for (const f of [a, b, c]) log.push(...f.seen);
    assert.deepEqual(a.seen, ['a>get', 'a<get', 'a.done:get']);
    assert.deepEqual(c.seen, ['c>get', 'c<get', 'c.done:get']);
    assert.deepEqual(log.filter((l) => l.includes('>') || l.includes('<')), ['a>get', 'a<get', 'b>get', 'b<get', 'c>get', 'c<get']);
  });

  it('a mutation added by a filter reaches the upstream', async () => {
    use(new ScriptedFilter('tagger', { get: (req) => { req.mutate('tenant', 'green'); return FilterStatus.CONTINUE; } }));
    const r = await call(client(), 2n, 'get');
    assert.equal(pair(r, 'tenant'), 'green');
  });

  it('a local reply is the codec\'s error frame with the id; the upstream never sees the request; later filters are skipped', async () => {
    const later = new ScriptedFilter('later');
    const deny = new ScriptedFilter('deny', { secret: (req) => { req.rejectWith(ErrorKind.OVER_LIMIT, 'denied by test'); return FilterStatus.LOCAL_REPLY; } });
    use(deny, later);
    const seen = server.received.length;
    const r = await call(client(), 3n, 'secret');
    assert.deepEqual([r.type, r.id, pair(r, 'kind'), pair(r, 'message')], [8, 3n, String(ErrorKind.OVER_LIMIT), 'denied by test']);
    assert.equal(server.received.slice(seen).filter((f) => pair(f, 'method') === 'secret').length, 0);
    assert.deepEqual(later.seen, []);
    assert.deepEqual(deny.seen, ['deny>secret', 'deny<secret', 'deny.done:secret'], 'the answer passes back through the filter that made it');
  });

  it('pause holds one request until the filter resumes it; other clients go on meanwhile', async () => {
    const gate = new ScriptedFilter('gate', { slow: () => FilterStatus.PAUSE });
    use(gate);
    const held = client();
    held.write(kvFrame(0, 4n, [['method', 'slow']]));
    await waitFor('the request paused', () => gate.paused.length === 1);
    const other = await call(client(), 5n, 'fast');
    assert.equal(pair(other, 'method'), 'fast', 'another client was answered while one request was paused');
    assert.equal(frames(held).length, 0);
    const { req, chain } = gate.paused[0];
    chain.resume(req);
    await held.until(() => frames(held).length === 1);
    assert.equal(pair(frames(held)[0], 'method'), 'slow');
  });

  it('a client that leaves while its request is paused: the filter is told, and resuming sends nothing', async () => {
    const gate = new ScriptedFilter('gate', { slow: () => FilterStatus.PAUSE });
    use(gate);
    const leaver = client();
    leaver.write(kvFrame(0, 6n, [['method', 'slow']]));
    await waitFor('the request paused', () => gate.paused.length === 1);
    leaver.reset();
    await waitFor('the filter told', () => gate.seen.includes('gate.done:(gone)'));
    const seen = server.received.length;
    gate.paused[0].chain.resume(gate.paused[0].req);
    await call(client(), 7n, 'after');
    assert.deepEqual(server.received.slice(seen).map((f) => pair(f, 'method')), ['after']);
  });

  it('abort closes the client connection; the filter is told once that the request is over', async () => {
    const closer = new ScriptedFilter('closer', { bye: () => FilterStatus.ABORT });
    use(closer);
    const c = client();
    c.write(kvFrame(0, 8n, [['method', 'bye']]));
    await c.until(() => c.closed);
    assert.equal(frames(c).length, 0);
    await new Promise((r) => setTimeout(r, 50)); // the proxy's side of the close has run
    assert.deepEqual(closer.seen.filter((l) => l.includes('.done')), ['closer.done:bye']);
  });

  it('a one-way request: filters see it and are told it is over (nothing answers it)', async () => {
    const f = new ScriptedFilter('watch');
    use(f);
    const c = client();
    c.write(kvFrame(2, 12n, [['method', 'notify']]));
    await waitFor('the one-way request done', () => f.seen.includes('watch.done:notify'));
    assert.deepEqual(f.seen, ['watch>notify', 'watch.done:notify']);
  });

  it('only the filter that paused a request can resume it', async () => {
    const gate = new ScriptedFilter('gate', { slow: () => FilterStatus.PAUSE });
    const other = new ScriptedFilter('other');
    use(other, gate);
    const c = client();
    c.write(kvFrame(0, 13n, [['method', 'slow']]));
    await waitFor('paused', () => gate.paused.length === 1);
    const { req, chain } = gate.paused[0];
    chain.resume(req, FilterStatus.CONTINUE, other); // a stray resume from another filter
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(frames(c).length, 0, 'still paused');
    chain.resume(req, FilterStatus.CONTINUE, gate);
    await c.until(() => frames(c).length === 1);
  });

  it('requests a filter answers are counted (route "" and cluster ""), as errors', async () => {
    use(new ScriptedFilter('deny', { secret: (req) => { req.rejectWith(ErrorKind.OVER_LIMIT, 'no'); return FilterStatus.LOCAL_REPLY; } }));
    const count = () => proxy.stats.request('kv', '', '');
    const before = { total: count().total, errors: count().errors };
    await call(client(), 14n, 'secret');
    assert.deepEqual({ total: count().total, errors: count().errors, active: count().active }, { total: before.total + 1, errors: before.errors + 1, active: 0 });
  });

  it('a response filter can abort: the client connection closes instead of getting the answer', async () => {
    use(new ScriptedFilter('a'), new ScriptedFilter('b'));
    const c = client();
    c.write(kvFrame(0, 9n, [['method', 'cut-response']]));
    await c.until(() => c.closed);
    assert.equal(frames(c).length, 0);
  });

  const failures: Array<[FailurePolicy, (r: KvDecoded) => void]> = [
    ['fail_closed', (r) => assert.deepEqual([r.type, pair(r, 'message')], [8, 'meltemi: filter broken failed'])],
    ['fail_open', (r) => assert.equal(pair(r, 'server'), 'v1')],
  ];
  for (const [policy, check] of failures) {
    it(`a filter that throws, ${policy}: the request is ${policy === 'fail_closed' ? 'answered with an error' : 'passed on'}; the connection stays usable`, async () => {
      use(new ScriptedFilter('broken', { boom: () => { throw new Error('filter bug'); } }, policy));
      const c = client();
      check(await call(c, 10n, 'boom'));
      assert.equal(pair(await call(c, 11n, 'fine'), 'server'), 'v1');
    });
  }
});
