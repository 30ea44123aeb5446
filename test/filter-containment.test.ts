// A filter plugin that traps or loops costs one request, never the proxy: with fail_closed the
// request gets the codec's error reply, with fail_open it passes; the instance is replaced and
// its root configured again, so the next request on the same connection is filtered normally;
// /plugins counts the traps. A filter rebuilt while requests flow is picked up by new
// connections with no failed request.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Meltemi } from '../runtime/server';
import { kvCall, kvFrame, KvDecoded, kvFrames } from './helpers/kv-frames';
import { KvServer } from './helpers/kv-server';
import { TEST_PLUGIN_DIR } from './helpers/paths';
import { adminGet, metricSum, portOf, RawClient, startProxy } from './helpers/proxy';

const pair = (f: KvDecoded, key: string) => f.pairs.find(([k]) => k === key)?.[1];

/** `wasm` with a custom section appended (valid anywhere after the header; changes no behaviour). */
function withCustomSection(wasm: Buffer, name: string): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const payload = Buffer.concat([Buffer.from([nameBytes.length]), nameBytes]);
  return Buffer.concat([wasm, Buffer.from([0, payload.length]), payload]);
}

describe('filter containment: traps and loops', function () {
  this.timeout(30_000);
  let server: KvServer;
  let proxy: Meltemi;
  const clients: RawClient[] = [];

  before(async () => {
    server = await KvServer.start('v1');
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-filters-'));
    for (const f of ['kv.wasm', 'probe-filter.wasm']) copyFileSync(join(TEST_PLUGIN_DIR, f), join(dir, f));
    const listener = (name: string, policy: string) => `
  - name: ${name}
    port: 0
    protocol: kv
    filters: [ { name: probe-filter, failure_policy: ${policy} } ]
    route_config: { routes: [ { route: { cluster: v1 } } ] }`;
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(dir)}, fuel_per_call: 2000000 }
listeners:${listener('closed', 'fail_closed')}${listener('open', 'fail_open')}
clusters:
  - { name: v1, endpoints: [ { address: 127.0.0.1, port: ${server.port} } ] }
`);
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await proxy?.stop();
    await server?.stop();
  });

  async function call(c: RawClient, id: bigint, pairs: Array<[string, string]>): Promise<KvDecoded> {
    const got = await kvCall(c, id, [['method', 'm'], ...pairs]);
    assert.ok(got, 'answered before the connection closed');
    return got;
  }
  const client = (listener: string) => {
    const c = new RawClient(portOf(proxy, listener));
    clients.push(c);
    return c;
  };
  const traps = async () => JSON.parse((await adminGet(proxy.admin!.port, '/plugins')).body).find((p: { name: string }) => p.name === 'probe-filter').traps as number;

  // [what, listener, request pairs, check of the answer, whether the instance trapped]
  const cases: Array<[string, string, Array<[string, string]>, (r: KvDecoded) => void, boolean?]> = [
    ['a trap, fail_closed', 'closed', [['filter-trap', '1']], (r) => assert.deepEqual([r.type, pair(r, 'message')], [8, 'meltemi: filter probe-filter failed'])],
    ['a trap, fail_open', 'open', [['filter-trap', '1']], (r) => assert.equal(pair(r, 'server'), 'v1')],
    ['a loop stopped by fuel, fail_closed', 'closed', [['filter-spin', '1']], (r) => assert.deepEqual([r.type, pair(r, 'message')], [8, 'meltemi: filter probe-filter failed'])],
    ['a pause with no timer (nothing would resume it), fail_closed', 'closed', [['filter-hang', '1']], (r) => assert.deepEqual([r.type, pair(r, 'message')], [8, 'meltemi: filter probe-filter failed']), false],
  ];
  for (const [what, listener, pairs, check, trapped = true] of cases) {
    it(`${what}: that request only; the next request is filtered`, async () => {
      const before = await traps();
      const c = client(listener);
      check(await call(c, 1n, pairs));
      assert.equal(await traps(), before + (trapped ? 1 : 0));
      const outcomes = metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_filter_outcomes_total', { listener, filter: 'probe-filter', outcome: 'failure' });
      assert.ok(outcomes >= 1, 'counted on /metrics');
      if (trapped) assert.ok(metricSum((await adminGet(proxy.admin!.port, '/metrics')).body, 'meltemi_plugin_traps_total', { plugin: 'probe-filter' }) >= 1);
      const next = await call(c, 2n, [['tag', 'after']]);
      assert.equal(pair(next, 'tagged'), 'after', 'the filter runs again, configured, in a new instance');
    });
  }
});

describe('filter hot reload under load', function () {
  this.timeout(120_000);
  let server: KvServer;
  let proxy: Meltemi;
  let dir: string;

  before(async () => {
    server = await KvServer.start('v1');
    dir = mkdtempSync(join(tmpdir(), 'meltemi-filter-reload-'));
    copyFileSync(join(TEST_PLUGIN_DIR, 'kv.wasm'), join(dir, 'kv.wasm'));
    copyFileSync(join(TEST_PLUGIN_DIR, 'probe-filter.wasm'), join(dir, 'probe-filter.wasm'));
    proxy = await startProxy(`
admin: { port: 0 }
plugins: { directory: ${JSON.stringify(dir)} }
listeners:
  - name: kv
    port: 0
    protocol: kv
    filters: [ { name: probe-filter } ]
    route_config: { routes: [ { route: { cluster: v1 } } ] }
clusters:
  - { name: v1, endpoints: [ { address: 127.0.0.1, port: ${server.port} } ] }
`);
  });

  after(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  it('the filter replaced 100 times while clients call: 0 failed requests, and new connections use the new build', async () => {
    let stop = false;
    let calls = 0;
    const failures: string[] = [];
    const port = portOf(proxy, 'kv');
    const loops = [0, 1, 2, 3].map(async (n) => {
      let id = 1n;
      while (!stop) {
        // A new connection every 20 calls: it takes the chain current at its start.
        const c = new RawClient(port);
        for (let i = 0; i < 20 && !stop; i++) {
          const before = kvFrames(c.received).length;
          c.write(kvFrame(0, id++, [['method', `loop${n}`], ['tag', 'x']]));
          await c.until(() => kvFrames(c.received).length > before || c.closed);
          const r = kvFrames(c.received)[before];
          if (!r || r.type !== 1 || pair(r, 'tagged') !== 'x') failures.push(JSON.stringify(r ?? 'closed'));
          calls++;
        }
        c.destroy();
      }
    });
    const generation = async () => JSON.parse((await adminGet(proxy.admin!.port, '/plugins')).body).find((p: { name: string }) => p.name === 'probe-filter').generation as number;
    const first = await generation();
    const original = readFileSync(join(TEST_PLUGIN_DIR, 'probe-filter.wasm'));
    for (let i = 0; i < 100; i++) {
      // The same code with a custom section naming the build: new bytes, so a new generation.
      const tmp = join(dir, `.probe-${i}.tmp`);
      writeFileSync(tmp, withCustomSection(original, `build-${i}`));
      renameSync(tmp, join(dir, 'probe-filter.wasm'));
      await proxy.reloadPlugins();
    }
    stop = true;
    await Promise.all(loops);
    assert.deepEqual(failures, []);
    assert.ok(calls > 100, `${calls} calls`);
    assert.equal(await generation(), first + 100, 'every build became the current generation');
  });
});

describe('filter containment: a root that traps while configuring', () => {
  it('is not kept: after a later trap, the instance is replaced and only the good roots are configured again', async () => {
    const { ConsoleLogger } = await import('../runtime/core/logger');
    const { acceptPlugin } = await import('../runtime/plugin/plugin-accept');
    const { FilterPlugin } = await import('../runtime/filter/filter-plugin');
    const { WasmFilter } = await import('../runtime/filter/wasm-filter');
    const { encodeRecord, pairsSource } = await import('../runtime/filter/filter-record');
    const file = join(TEST_PLUGIN_DIR, 'probe-filter.wasm');
    const accepted = await acceptPlugin(file, { maxFileBytes: 1 << 25, maxMemoryBytes: 1 << 29, fuelPerCall: 200_000_000 });
    assert.equal(accepted.unchanged, false);
    if (accepted.unchanged) return;
    const plugin = new FilterPlugin({ file, sha256: accepted.sha256, module: accepted.module, descriptor: accepted.descriptor, loadedAt: new Date() }, new ConsoleLogger('silent'));
    const good = new WasmFilter(plugin, { name: 'probe-filter', config: {}, failurePolicy: 'fail_closed' }, 'listeners[0].filters[0]');
    assert.throws(() => new WasmFilter(plugin, { name: 'probe-filter', config: { trapOnConfigure: true }, failurePolicy: 'fail_closed' }, 'listeners[1].filters[0]'),
      /listeners\[1\]\.filters\[0\]\.config: filter probe-filter failed while reading its config: .*trap while reading the config/);
    assert.throws(() => plugin.current().onRequest(1, 1, encodeRecord(pairsSource([['filter-trap', '1']]))), /trap requested by the request/);
    const replaced = plugin.current(); // reconfigures the good root only; the failed one is gone
    assert.equal(plugin.recycles, 2, 'the trap while configuring, and the request trap');
    assert.deepEqual(replaced.onRequest(1, 2, encodeRecord(pairsSource([['tag', 'ok']]))).action, 0);
    good.close();
  });
});

describe('filter files that change what they hold', function () {
  this.timeout(20_000);

  it('a filter file overwritten with a codec frees the filter name: another file may provide it', async () => {
    const server = await KvServer.start('v1');
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-filter-swap-'));
    copyFileSync(join(TEST_PLUGIN_DIR, 'kv.wasm'), join(dir, 'kv.wasm'));
    copyFileSync(join(TEST_PLUGIN_DIR, 'probe-filter.wasm'), join(dir, 'x.wasm'));
    const proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(dir)}, watch: false }
listeners:
  - { name: kv, port: 0, protocol: kv, route_config: { routes: [ { route: { cluster: v1 } } ] } }
clusters:
  - { name: v1, endpoints: [ { address: 127.0.0.1, port: ${server.port} } ] }
`);
    try {
      assert.equal(proxy.plugins.filter('probe-filter')?.compiled.file, join(dir, 'x.wasm'));
      copyFileSync(join(TEST_PLUGIN_DIR, 'response-tagger.wasm'), join(dir, 'x.wasm')); // another filter now
      await proxy.reloadPlugins();
      assert.equal(proxy.plugins.filter('probe-filter'), undefined, 'the name no file holds is gone');
      copyFileSync(join(TEST_PLUGIN_DIR, 'probe-filter.wasm'), join(dir, 'y.wasm'));
      await proxy.reloadPlugins();
      assert.equal(proxy.plugins.filter('probe-filter')?.compiled.file, join(dir, 'y.wasm'));
      assert.equal(proxy.plugins.filter('response-tagger')?.compiled.file, join(dir, 'x.wasm'));
    } finally {
      await proxy.stop();
      await server.stop();
    }
  });
});
