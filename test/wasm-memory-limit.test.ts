// The memory cap is written into the module: growth past it fails inside the guest.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkWasmHeader, limitMemory } from '../runtime/wasm/wasm-memory-limit';
import { TEST_PLUGIN_DIR } from './helpers/paths';

const PAGE = 65536;
const imports = { meltemi: { log() {} }, env: { abort() { throw new Error('abort'); } } };

describe('wasm memory limit', () => {
  const kv = readFileSync(join(TEST_PLUGIN_DIR, 'kv.wasm'));

  const cases: Array<[string, number, number]> = [
    ['a cap below the declared maximum lowers it', 16 * PAGE, 16],
    ['a cap that is not a whole page rounds down', 16 * PAGE + 100, 16],
    ['a cap above the declared maximum keeps the declared one', 8192 * PAGE, 4096],
  ];
  for (const [name, cap, pages] of cases) {
    it(name, () => {
      const { bytes, limits } = limitMemory(kv, cap);
      assert.equal(limits?.maxPages, pages);
      const memory = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports).exports.memory as WebAssembly.Memory;
      const have = memory.buffer.byteLength / PAGE;
      memory.grow(pages - have);
      assert.throws(() => memory.grow(1), RangeError);
    });
  }

  it('refuses an initial memory over the cap, and says so without quoting the file', () => {
    assert.throws(() => limitMemory(kv, 2 * PAGE), /initial memory of 262144 bytes, over the 131072-byte cap/);
    assert.throws(() => checkWasmHeader(Buffer.from('root:x:0:0:root')), (err: Error) => !err.message.includes('root') && /magic/.test(err.message));
  });
});
