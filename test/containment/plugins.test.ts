// Containment of hostile plugin files: a .wasm dropped into the watched directory may loop at
// start, be huge, ask for more memory than the cap, or not be a file at all. Each attack runs
// against a proxy in its own process while a healthy Redis client on another listener measures
// its latency; the proxy's memory is sampled and it must exit on SIGTERM in time.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_PLUGIN_DIR } from '../helpers/paths';
import { AttackBench } from './attack-harness';
import { bloated, withInitialPages, withStartLoop } from './hostile-wasm';
import { MiB } from './probe';

const KV = () => readFileSync(join(TEST_PLUGIN_DIR, 'kv.wasm'));

describe('containment: hostile plugin files', function () {
  this.timeout(120_000);
  let bench: AttackBench;

  before(async () => {
    bench = await AttackBench.start({ plugins: 'load_timeout: 10s, max_file_size: 8388608, max_memory: 33554432, fuel_per_call: 20000000' });
  });

  after(async () => {
    await bench?.kill();
  });

  const drop = (name: string, bytes: Buffer) => {
    const file = join(bench.pluginDir, name);
    writeFileSync(file, bytes);
    return file;
  };

  it('a loop in _initialize is stopped by its fuel in the canary, off the event loop', async () => {
    await bench.underAttack(async () => {
      const file = join(bench.pluginDir, 'init-loop.wasm');
      copyFileSync(join(TEST_PLUGIN_DIR, 'init-loop.wasm'), file);
      const r = await bench.rejection(file, /_initialize trapped.*exceeded its budget/);
      assert.equal(r.code, 'MELTEMI_PLUGIN_INVALID');
    });
  });

  it('a loop in the Wasm start section is stopped the same way', async () => {
    const bytes = await withStartLoop(KV());
    await bench.underAttack(async () => {
      const file = drop('start-loop.wasm', bytes);
      await bench.rejection(file, /instantiation failed.*start function/);
    });
  });

  it('a declared memory above plugins.max_memory is refused before anything runs', async () => {
    const patched = withInitialPages(KV(), 1024); // 64 MiB against a 32 MiB cap
    await bench.underAttack(async () => {
      const file = drop('huge-initial.wasm', patched);
      await bench.rejection(file, /initial memory of 67108864 bytes, over the 33554432-byte cap/);
    });
  });

  it('a symlink to /dev/zero is refused as not a regular file; memory stays flat', async () => {
    const report = await bench.underAttack(async () => {
      const file = join(bench.pluginDir, 'zero.wasm');
      symlinkSync('/dev/zero', file);
      await bench.rejection(file, /not a regular file \(a character device\)/);
    }, { rssBound: 400 * MiB });
    assert.ok(report.peakRss < 400 * MiB);
  });

  it('a FIFO named *.wasm does not wedge reloading: a valid plugin dropped after it loads', async () => {
    await bench.underAttack(async () => {
      const fifo = join(bench.pluginDir, 'fifo.wasm');
      execFileSync('mkfifo', [fifo]);
      await bench.rejection(fifo, /not a regular file \(a FIFO\)/);
      copyFileSync(join(TEST_PLUGIN_DIR, 'kv.wasm'), join(bench.pluginDir, 'kv.wasm'));
      const deadline = Date.now() + 10_000;
      while (!(await bench.admin('/plugins')).body.includes('"protocol": "kv"')) {
        if (Date.now() > deadline) throw new Error('kv.wasm was not loaded after the FIFO');
        await new Promise((r) => setTimeout(r, 50));
      }
    });
  });

  it('a file over plugins.max_file_size is refused without being read', async () => {
    await bench.underAttack(async () => {
      const file = drop('oversize.wasm', Buffer.concat([KV(), Buffer.alloc(9 * MiB)]));
      await bench.rejection(file, /over the 8388608-byte limit/);
    });
  });

  it('a module with a megabyte of code to compile and meter does not stall the listeners', async () => {
    const bytes = await bloated(KV(), 300); // ~1 MB of code to compile, meter and check
    await bench.underAttack(async () => {
      const file = drop('bulky.wasm', bytes);
      // kv.wasm already provides protocol kv: the whole accept path runs first, off the loop.
      await bench.rejection(file, /protocol "kv" is already provided/);
    });
  });
});

describe('containment: a plugin that outlasts plugins.load_timeout', function () {
  this.timeout(120_000);
  let bench: AttackBench;

  before(async () => {
    // Metering off: the deadline alone has to stop a start function that never returns.
    bench = await AttackBench.start({ plugins: 'load_timeout: 1500ms, fuel_per_call: 0' });
  });

  after(async () => {
    await bench?.kill();
  });

  it('its accepting worker is stopped, the file is rejected, and the proxy exits on SIGTERM in time', async () => {
    const bytes = await withStartLoop(KV());
    await bench.underAttack(async () => {
      const file = join(bench.pluginDir, 'slow.wasm');
      writeFileSync(file, bytes);
      const r = await bench.rejection(file, /took longer than 1500 ms/);
      assert.equal(r.code, 'MELTEMI_PLUGIN_TIMEOUT');
    });
    // Again, and SIGTERM while that compile is still running.
    writeFileSync(join(bench.pluginDir, 'slow2.wasm'), bytes);
    await new Promise((r) => setTimeout(r, 150));
    await bench.stopAndCheckExit();
  });
});
