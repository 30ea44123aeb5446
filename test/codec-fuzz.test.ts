// Fuzzing the Redis, Dubbo, Thrift, MySQL, Memcached, TARS and ZooKeeper codecs through the real host: 100 000 random and mutated
// frames per codec (seeded, so a failure reproduces), the saved regression inputs, and garbage
// sent to live listeners while a healthy client keeps working. `npm run fuzz` runs far more.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { ConsoleLogger } from '../runtime/core/logger';
import { CallFlag } from '../runtime/wasm/abi';
import { CodecPlugin } from '../runtime/codec/codec-plugin';
import { compilePlugin } from '../runtime/plugin/plugin-loader';
import { FrameReader } from '../runtime/proxy/frame-reader';
import type { Meltemi } from '../runtime/server';
import { Corpus, dubboCorpus, memcachedCorpus, redisCorpus, thriftCorpus } from './fuzz/corpus';
import { mysqlCorpus } from './fuzz/mysql-corpus';
import { tarsCorpus } from './fuzz/tars-corpus';
import { zookeeperCorpus } from './fuzz/zookeeper-corpus';
import { fuzzCodec, mutate, Rng } from './fuzz/engine';
import { PLUGIN_DIR, ROOT } from './helpers/paths';
import { portOf, startProxy } from './helpers/proxy';
import { RedisServer } from './helpers/redis-server';

const CODECS: Array<[string, () => Corpus]> = [['redis', redisCorpus], ['dubbo', dubboCorpus], ['thrift', thriftCorpus], ['mysql', mysqlCorpus], ['memcached', memcachedCorpus], ['tars', tarsCorpus], ['zookeeper', zookeeperCorpus]];
// The other codecs have their live garbage tests against their own servers (mysql-proxy, memcached-proxy, tars-proxy, zookeeper-proxy).
const LIVE = CODECS.filter(([name]) => ['redis', 'dubbo', 'thrift'].includes(name));
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261122);
const REGRESSIONS = join(ROOT, 'test', 'fixtures', 'fuzz');
const logger = new ConsoleLogger('silent');

function load(name: string): CodecPlugin {
  const file = join(PLUGIN_DIR, `${name}.wasm`);
  return new CodecPlugin(compilePlugin(file, readFileSync(file), logger), logger);
}

describe('codec fuzzing', function () {
  this.timeout(300_000);

  for (const [name, corpus] of CODECS) {
    it(`${name}: ${FRAMES} random and mutated frames, no trap, no ABI violation (seed ${SEED})`, () => {
      const plugin = load(name);
      const stats = fuzzCodec(plugin, corpus(), { frames: FRAMES, seed: SEED, saveDir: null });
      assert.ok(stats.frames >= FRAMES);
      assert.ok(stats.decoded > FRAMES / 10, `valid frames still decode: ${stats.decoded}`);
      assert.ok(stats.protocolErrors > 0, 'mutations were rejected as protocol errors');
      assert.deepEqual(stats.failures, [], `failures: ${JSON.stringify(stats.failures.slice(0, 3))}`);
      assert.equal(plugin.traps, 0);
    });

    it(`${name}: saved regression inputs still decode or fail cleanly`, () => {
      const dir = join(REGRESSIONS, name);
      const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.bin')) : [];
      const plugin = load(name);
      for (const f of files) {
        const bytes = readFileSync(join(dir, f));
        const upstream = f.startsWith('response');
        for (const chunk of [bytes.length, 1, 7]) {
          const reader = new FrameReader(plugin.open(upstream, Buffer.alloc(0)), upstream ? CallFlag.SIDE_UPSTREAM : 0, 1 << 20);
          for (let at = 0; at < bytes.length; at += chunk) {
            const r = reader.push(bytes.subarray(at, at + chunk));
            if (r && r.status < 0) break;
          }
        }
      }
      assert.equal(plugin.traps, 0, `traps replaying ${files.length} regression inputs`);
    });
  }

  describe('garbage to live listeners', () => {
    let redis: RedisServer;
    let proxy: Meltemi;
    before(async () => {
      redis = await RedisServer.start();
      const listener = (name: string, protocol: string) => `
  - name: ${name}
    port: 0
    protocol: ${protocol}
    route_config: { routes: [ { route: { cluster: redis } } ] }`;
      proxy = await startProxy(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:${listener('redis', 'redis')}${listener('dubbo', 'dubbo')}${listener('thrift', 'thrift')}
clusters: [ { name: redis, endpoints: [ { address: 127.0.0.1, port: ${redis.port} } ] } ]
`);
    });
    after(async () => {
      await proxy?.stop();
      await redis?.stop();
    });

    it('300 connections of mutated frames per codec: each closes alone, a healthy client is unaffected', async () => {
      const rng = new Rng(SEED);
      const healthy = net.connect(portOf(proxy, 'redis'), '127.0.0.1');
      let healthyText = '';
      healthy.on('data', (d) => { healthyText += d.toString(); });
      let pings = 0;
      for (const [name, corpus] of LIVE) {
        const seeds = corpus().requests;
        await Promise.all(Array.from({ length: 300 }, () => new Promise<void>((resolve) => {
          const s = net.connect(portOf(proxy, name), '127.0.0.1');
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.on('data', () => {});
          s.on('connect', () => {
            s.end(Buffer.concat(Array.from({ length: 1 + rng.below(4) }, () => mutate(rng, seeds[rng.below(seeds.length)], seeds))));
          });
          setTimeout(() => s.destroy(), 2000).unref();
        })));
        healthy.write('PING\r\n');
        pings++;
      }
      const deadline = Date.now() + 3000;
      while (healthyText.split('+PONG').length - 1 < pings && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(healthyText, '+PONG\r\n'.repeat(pings));
      // Inputs that once desynchronised a shared upstream connection, replayed over TCP.
      for (const [name] of LIVE) {
        const dir = join(REGRESSIONS, name);
        for (const f of existsSync(dir) ? readdirSync(dir).filter((x) => x.startsWith('request')) : []) {
          await new Promise<void>((resolve) => {
            const s = net.connect(portOf(proxy, name), '127.0.0.1', () => s.end(readFileSync(join(dir, f))));
            s.on('error', () => {});
            s.on('data', () => {});
            s.on('close', () => resolve());
            setTimeout(() => s.destroy(), 2000).unref();
          });
        }
      }
      healthy.write('PING\r\n');
      pings++;
      const deadline2 = Date.now() + 3000;
      while (healthyText.split('+PONG').length - 1 < pings && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 10));
      assert.equal(healthyText, '+PONG\r\n'.repeat(pings), 'the shared upstream connection survived the regression inputs');
      healthy.destroy();
      for (const name of ['redis', 'dubbo', 'thrift']) assert.equal(proxy.listener(name)!.context.plugin.traps, 0, `${name} plugin traps`);
    });
  });
});
