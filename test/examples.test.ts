// The examples are part of the product: the control-plane example's resources build clean and
// route as its README says, and the run.sh scripts stop every child on a signal and refuse a
// port someone else holds (examples/lib.sh, driven on ports this test chose).

import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../runtime/config/load';
import { ControlPlane } from '../runtime/control-plane/control-plane';
import { DirectorySource } from '../runtime/control-plane/resource-source';
import { buildConfig } from '../runtime/control-plane/route-builder';
import { ConsoleLogger } from '../runtime/core/logger';
import { Meltemi } from '../runtime/server';
import { CaptureLogger } from './helpers/capture-logger';
import { PLUGIN_DIR, ROOT } from './helpers/paths';
import { portOf } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';

const EXAMPLE = join(ROOT, 'examples', 'control-plane');
const DRIVER = join(ROOT, 'test', 'fixtures', 'examples', 'driver.sh');

describe('examples/control-plane', function () {
  this.timeout(30_000);
  const exampleConfig = parse(readFileSync(join(EXAMPLE, 'meltemi.yaml'), 'utf8'));
  const routeName: string = exampleConfig.listeners[0].rds.route_config_name;

  it('its resources validate with no error and no note, and build the route the proxy subscribes to', async () => {
    const snapshot = await new DirectorySource(join(EXAMPLE, 'resources')).read();
    assert.deepEqual(snapshot.errors, []);
    assert.deepEqual(snapshot.notes, []);
    const built = buildConfig(snapshot.resources.map((l) => l.resource));
    assert.deepEqual([...built.routes.keys()], [routeName]);
    const clusters = new Set(built.clusters.map((c) => c.name));
    for (const r of built.routes.get(routeName)!.routes) assert.ok(r.route.kind === 'cluster' && clusters.has(r.route.cluster), r.name);
  });

  describe('end to end, on ports of its own', () => {
    let main: RedisServer;
    let cache: RedisServer;
    let cp: ControlPlane;
    let proxy: Meltemi;
    let client: Redis;

    before(async () => {
      [main, cache] = await Promise.all([RedisServer.start(), RedisServer.start()]);
      // The example's resources with the endpoints moved to this test's redis-servers.
      const dir = mkdtempSync(join(tmpdir(), 'meltemi-example-cp-'));
      cpSync(join(EXAMPLE, 'resources'), dir, { recursive: true });
      const service = join(dir, 'redis-service.yaml');
      writeFileSync(service, readFileSync(service, 'utf8').replace(': 7011 }', `: ${main.port} }`).replace(': 7012 }', `: ${cache.port} }`));
      cp = new ControlPlane(new DirectorySource(dir, 20), new ConsoleLogger('silent'));
      const cpPort = await cp.start('127.0.0.1', 0);
      const config = { ...exampleConfig, admin: { ...exampleConfig.admin, port: 0 }, plugins: { directory: PLUGIN_DIR }, xds: { ...exampleConfig.xds, port: cpPort } };
      config.listeners[0].port = 0;
      proxy = new Meltemi(parseConfig(stringify(config), EXAMPLE), { logger: new CaptureLogger() });
      await proxy.start();
      client = new Redis({ port: portOf(proxy, 'redis'), host: '127.0.0.1', protocol: 2, disableClientInfo: true, enableReadyCheck: false, maxRetriesPerRequest: 0 });
    });

    after(async () => {
      client?.disconnect();
      await proxy?.stop();
      cp?.stop();
      await Promise.all([main?.stop(), cache?.stop()]);
    });

    it('keys starting with cache: reach the cache redis, the rest reach main', async () => {
      await client.set('cache:greeting', 'hello');
      await client.set('user:1', 'ana');
      assert.equal(await cache.command('EXISTS cache:greeting'), ':1\r\n');
      assert.equal(await cache.command('EXISTS user:1'), ':0\r\n');
      assert.equal(await main.command('EXISTS user:1'), ':1\r\n');
    });
  });
});

describe('examples/lib.sh (what every run.sh uses)', function () {
  this.timeout(20_000);

  function run(args: string[]): { proc: ChildProcess; out: () => string; exit: Promise<number | null> } {
    const proc = spawn('bash', [DRIVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => { out += d; });
    proc.stderr!.on('data', (d) => { out += d; });
    return { proc, out: () => out, exit: new Promise((resolve) => proc.on('exit', (code) => resolve(code))) };
  }
  const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
  async function listening(): Promise<net.Server> {
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return server;
  }
  const portOfServer = (s: net.Server) => (s.address() as net.AddressInfo).port;

  it('refuses a port another process listens on, before starting anything', async () => {
    const stranger = await listening();
    try {
      const r = run(['check', String(portOfServer(stranger))]);
      assert.equal(await r.exit, 1);
      assert.match(r.out(), new RegExp(`127\\.0\\.0\\.1:${portOfServer(stranger)} is already in use.*nothing was started`));
    } finally {
      stranger.close();
    }
  });

  it('a redis-server that cannot start is an error, not a silent success', async () => {
    const stranger = await listening();
    try {
      const r = run(['redis', String(portOfServer(stranger))]);
      assert.equal(await r.exit, 1);
      assert.match(r.out(), /redis-server on 127\.0\.0\.1:\d+ exited at start/);
    } finally {
      stranger.close();
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} to the script's own PID stops it and every child`, async () => {
      const free = await listening();
      const port = portOfServer(free);
      await new Promise((resolve) => free.close(resolve));
      const r = run(['redis', String(port)]);
      while (!/children: /.test(r.out())) {
        if (r.proc.exitCode !== null) throw new Error(r.out());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const children = /children: ([\d ]+)/.exec(r.out())![1].trim().split(' ').map(Number);
      assert.equal(children.length, 2);
      assert.ok(children.every(alive));
      r.proc.kill(signal);
      assert.equal(await r.exit, signal === 'SIGTERM' ? 143 : 130);
      const deadline = Date.now() + 5000;
      while (children.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(children.filter(alive), [], 'no child outlives the script');
    });
  }
});

