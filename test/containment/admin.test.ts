// The admin port: changes need a token or the Unix socket, every request must name an allowed
// Host (DNS rebinding), and a storm of reload requests costs a reload or two, not hundreds.

import assert from 'node:assert/strict';
import http from 'node:http';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Meltemi } from '../../runtime/server';
import { hostAllowed, isLoopbackAddress } from '../../runtime/admin/admin-access';
import { PLUGIN_DIR } from '../helpers/paths';
import { startProxy } from '../helpers/proxy';

interface Reply { status: number; body: string }

function request(target: { port?: number; socketPath?: string; agent?: http.Agent }, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', ...target, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const TOKEN = 'correct-horse-battery-staple-0123';

async function proxyWith(admin: string): Promise<{ proxy: Meltemi; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'meltemi-admin-'));
  copyFileSync(join(PLUGIN_DIR, 'redis.wasm'), join(dir, 'redis.wasm'));
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  const proxy = await startProxy(`
admin: { port: 0, ${admin.replaceAll('DIR', dir)} }
plugins: { directory: ${JSON.stringify(dir)}, watch: false }
listeners: [ { name: r, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: r } } ] } } ]
clusters: [ { name: r, endpoints: [ { address: 127.0.0.1, port: 1 } ] } ]
`);
  return { proxy, dir };
}

describe('containment: admin access', function () {
  this.timeout(30_000);
  let withToken: { proxy: Meltemi; dir: string };
  let plain: { proxy: Meltemi; dir: string };

  before(async () => {
    withToken = await proxyWith('token_file: DIR/token, socket: DIR/admin.sock');
    plain = await proxyWith('socket: DIR/admin.sock');
  });

  after(async () => {
    await withToken?.proxy.stop();
    await plain?.proxy.stop();
  });

  // [what, which proxy, how, expected status]
  const cases: Array<[string, () => { proxy: Meltemi; dir: string }, (p: { proxy: Meltemi; dir: string }) => Promise<Reply>, number]> = [
    ['no token configured: a POST over TCP is refused', () => plain, (p) => request({ port: p.proxy.admin!.port }, 'POST', '/plugins/reload'), 403],
    ['a cross-origin text/plain POST (what a page can send) is refused', () => plain, (p) => request({ port: p.proxy.admin!.port }, 'POST', '/plugins/reload', { 'content-type': 'text/plain', origin: 'http://evil.example' }, 'x'), 403],
    ['no token configured: a POST over the Unix socket is done', () => plain, (p) => request({ socketPath: join(p.dir, 'admin.sock') }, 'POST', '/plugins/reload'), 200],
    ['token configured: a POST without it is refused', () => withToken, (p) => request({ port: p.proxy.admin!.port }, 'POST', '/plugins/reload'), 401],
    ['token configured: a POST with a wrong one is refused', () => withToken, (p) => request({ port: p.proxy.admin!.port }, 'POST', '/plugins/reload', { authorization: 'Bearer nope-nope-nope-nope' }), 401],
    ['token configured: a POST with it is done', () => withToken, (p) => request({ port: p.proxy.admin!.port }, 'POST', '/plugins/reload', { authorization: `Bearer ${TOKEN}` }), 200],
    ['a rebound DNS name in Host is refused, even for reads', () => plain, (p) => request({ port: p.proxy.admin!.port }, 'GET', '/config_dump', { host: 'attacker.example:15000' }), 403],
    ['Host localhost reads', () => plain, (p) => request({ port: p.proxy.admin!.port }, 'GET', '/config_dump', { host: `localhost:${p.proxy.admin!.port}` }), 200],
  ];
  for (const [what, which, how, status] of cases) {
    it(what, async () => {
      const reply = await how(which());
      assert.equal(reply.status, status, reply.body);
    });
  }

  it('500 reload requests over 50 connections share reloads (the admin port takes at most 64 connections)', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    const before = withToken.proxy.reloadRuns;
    const replies = await Promise.all(Array.from({ length: 500 }, () =>
      request({ port: withToken.proxy.admin!.port, agent }, 'POST', '/plugins/reload', { authorization: `Bearer ${TOKEN}` })));
    agent.destroy();
    assert.ok(replies.every((r) => r.status === 200));
    const runs = withToken.proxy.reloadRuns - before;
    process.stdout.write(`      500 reload requests: ${runs} directory reloads\n`);
    assert.ok(runs <= 25, `${runs} reloads`);
  });

  it('host and address rules, by table', () => {
    const hosts: Array<[string | undefined, boolean]> = [
      ['127.0.0.1:15000', true], ['[::1]:15000', true], ['localhost', true], ['meltemi.localhost:1', true],
      ['10.1.2.3:15000', true], ['evil.example', false], ['evil.example:15000', false], ['admin.internal', true], [undefined, true],
    ];
    for (const [host, ok] of hosts) assert.equal(hostAllowed(host, ['admin.internal']), ok, String(host));
    const addresses: Array<[string, boolean]> = [['127.0.0.1', true], ['127.1.2.3', true], ['::1', true], ['localhost', true], ['0.0.0.0', false], ['::', false], ['10.0.0.1', false]];
    for (const [address, loopback] of addresses) assert.equal(isLoopbackAddress(address), loopback, address);
  });
});
