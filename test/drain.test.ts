// Graceful drain in one process: POST /drain's authorisation, /ready during a drain, idle
// connections closed at once, an in-flight request answered before its connection closes, new
// connections refused by a bound listener.

import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Meltemi } from '../runtime/server';
import { RedisServer } from './helpers/redis-server';
import { portOf, startProxy } from './helpers/proxy';
import { PLUGIN_DIR } from './helpers/paths';

describe('drain: POST /drain, readiness and connections', function () {
  this.timeout(20_000);
  let redis: RedisServer;
  let proxy: Meltemi;
  const token = 'a-drain-token-of-some-length';

  before(async () => {
    redis = await RedisServer.start();
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-drain-'));
    writeFileSync(join(dir, 'token'), token);
    proxy = await startProxy(`
plugins: { directory: ${PLUGIN_DIR}, watch: false }
admin: { address: 127.0.0.1, port: 0, token_file: ${join(dir, 'token')} }
drain: { timeout: 10s }
listeners:
  - name: redis
    address: 127.0.0.1
    port: 0
    protocol: redis
    route_config: { name: r, routes: [ { name: all, match: {}, route: { cluster: redis } } ] }
clusters:
  - name: redis
    endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ]
`);
  });

  after(async () => {
    await proxy?.stop();
    await redis?.stop();
  });

  const admin = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${proxy.admin!.port}${path}`, init);

  it('refuses POST /drain without the token; with it, drains: readiness fails, idle connections close, a request in flight is answered, new ones are refused', async () => {
    const idle = net.connect(portOf(proxy, 'redis'), '127.0.0.1');
    const busy = net.connect(portOf(proxy, 'redis'), '127.0.0.1');
    await Promise.all([idle, busy].map((s) => new Promise((resolve) => s.once('connect', resolve))));
    assert.equal((await admin('/drain', { method: 'POST' })).status, 401);
    assert.equal((await admin('/ready')).status, 200);

    // BLPOP holds its request in flight for 1 s: the drain must wait for its answer.
    let busyReply = '';
    busy.on('data', (d: Buffer) => { busyReply += d.toString(); });
    busy.write('BLPOP drain:none 1\r\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const idleClosed = new Promise((resolve) => idle.once('close', resolve));
    const busyClosed = new Promise((resolve) => busy.once('close', resolve));
    const res = await admin('/drain', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 202);
    const body = await res.json() as { draining: boolean; active_connections: number };
    assert.equal(body.draining, true);
    const ready = await admin('/ready');
    assert.equal(ready.status, 503);
    assert.equal((await ready.text()).trim(), 'DRAINING');
    await idleClosed;
    assert.equal(busyReply, '', 'the in-flight request is not answered yet, and its connection is open');
    await busyClosed;
    assert.equal(busyReply, '*-1\r\n', 'answered, then closed');
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(portOf(proxy, 'redis'), '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve('accepted'); });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED');
    assert.equal((await proxy.drain().done), 'idle');
  });
});
