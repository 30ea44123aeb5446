// A hostile filter plugin on one listener — requests that make it loop until its fuel runs out,
// trap, or pause without a timer — costs only those requests: a healthy client on another
// listener keeps its latency, and the proxy's memory stays bounded.

import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { kvCall } from '../helpers/kv-frames';
import { KvServer } from '../helpers/kv-server';
import { TEST_PLUGIN_DIR } from '../helpers/paths';
import { RawClient } from '../helpers/proxy';
import { AttackBench } from './attack-harness';
import { MiB } from './probe';

describe('containment: a hostile filter plugin', function () {
  this.timeout(60_000);
  let bench: AttackBench;
  let kv: KvServer;

  before(async () => {
    kv = await KvServer.start('kv');
    bench = await AttackBench.start({
      plugins: 'fuel_per_call: 50000000',
      portNames: ['hostile'],
      listeners: (p) => `  - { name: hostile, port: ${p.hostile}, protocol: kv, filters: [ { name: probe-filter } ], route_config: { routes: [ { route: { cluster: kv } } ] } }`,
      clusters: () => `  - { name: kv, endpoints: [ { address: 127.0.0.1, port: ${kv.port} } ] }`,
      beforeStart: (dir) => {
        for (const f of ['kv.wasm', 'probe-filter.wasm']) copyFileSync(join(TEST_PLUGIN_DIR, f), join(dir, f));
      },
    });
  });

  after(async () => {
    await bench?.kill();
    await kv?.stop();
  });

  it('loops, traps and timerless pauses on every request: the healthy listener is served, memory bounded', async () => {
    let answered = 0;
    await bench.underAttack(async () => {
      const until = Date.now() + 1500;
      await Promise.all([0, 1, 2, 3].map(async (n) => {
        const c = new RawClient(bench.ports.hostile);
        let id = 1n;
        while (Date.now() < until) {
          const key = ['filter-spin', 'filter-trap', 'filter-hang'][n % 3];
          const r = await kvCall(c, id++, [['method', 'm'], [key, '1']]);
          assert.equal(r?.type, 8, 'an error reply, not a hang');
          answered++;
        }
        c.destroy();
      }));
    }, { p99Ms: 250, rssBound: 300 * MiB });
    assert.ok(answered > 10, `${answered} hostile requests answered`);
  });
});
