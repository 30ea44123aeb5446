// Fuel metering as a binary rewrite, fuel counting instructions: whatever shape unbounded work
// takes — a loop, recursion, a tail call that never grows the stack, a call tree that doubles at
// every level or fans out wide, a call through a table, a bulk memory operation over a large
// length, repeated memory.grow — a call runs out of its budget and traps; exported functions
// start each call with a full budget; leaf helpers are charged to their callers instead of
// checking themselves; and what the rewriter cannot read, or could not bound (table.grow, huge
// tables), is refused. Modules are built with Binaryen here.

import assert from 'node:assert/strict';
import { FUEL_EXPORT, MAX_UNCHECKED_COST, MAX_TABLE_ENTRIES, meterModule, planMetering } from '../runtime/wasm/fuel-metering';
import type { BodyScan } from '../runtime/wasm/wasm-code';
import { WasmFormatError } from '../runtime/wasm/wasm-binary';

type Binaryen = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<{ default: Binaryen }>;
let b: Binaryen;

/** A module built by `build`, emitted as bytes. */
function moduleOf(build: (mod: Binaryen) => void): Uint8Array {
  const mod = new b.Module();
  try {
    mod.setFeatures(b.Features.All);
    build(mod);
    if (!mod.validate()) throw new Error('test module does not validate');
    return mod.emitBinary();
  } finally {
    mod.dispose();
  }
}

interface Run { trapped: boolean; fuelLeft: number; result?: number }

function run(bytes: Uint8Array, budget: number, fn = 'run', ...args: number[]): Run {
  const metered = meterModule(bytes, budget);
  assert.ok(WebAssembly.validate(metered), 'the metered module validates');
  const exports = new WebAssembly.Instance(new WebAssembly.Module(metered), {}).exports as Record<string, unknown>;
  const fuel = exports[FUEL_EXPORT] as WebAssembly.Global;
  try {
    const result = (exports[fn] as (...a: number[]) => number)(...args);
    return { trapped: false, fuelLeft: fuel.value as number, result };
  } catch (err) {
    assert.ok(err instanceof WebAssembly.RuntimeError, String(err));
    return { trapped: true, fuelLeft: fuel.value as number };
  }
}

const i32 = () => b.i32;

describe('fuel metering', () => {
  before(async () => {
    b = (await importEsm('binaryen')).default;
  });

  // Each module would run for minutes (or forever) unmetered; metered, it traps within its budget.
  const unbounded: Array<[what: string, build: (mod: Binaryen) => void]> = [
    ['a loop that never ends', (mod) => {
      mod.addFunction('run', b.none, b.none, [], mod.loop('l', mod.br('l')));
    }],
    ['recursion that never ends (tail calls: no stack overflow)', (mod) => {
      mod.addFunction('run', b.none, b.none, [], mod.return_call('run', [], b.none));
    }],
    ['mutual tail recursion', (mod) => {
      mod.addFunction('ping', b.none, b.none, [], mod.return_call('pong', [], b.none));
      mod.addFunction('pong', b.none, b.none, [], mod.return_call('ping', [], b.none));
      mod.addFunction('run', b.none, b.none, [], mod.call('ping', [], b.none));
    }],
    ['shallow recursion that doubles at each level (2^40 calls, depth 40)', (mod) => {
      const n = () => mod.local.get(0, i32());
      const down = () => mod.call('f', [mod.i32.sub(n(), mod.i32.const(1))], b.none);
      mod.addFunction('f', b.createType([i32()]), b.none, [], mod.if(n(), mod.block(null, [down(), down()])));
      mod.addFunction('run', b.none, b.none, [], mod.call('f', [mod.i32.const(40)], b.none));
    }],
    ['a call tree of 40 functions each calling the next twice, no recursion', (mod) => {
      mod.addFunction('f40', b.none, b.none, [], mod.nop());
      for (let i = 39; i >= 0; i--) mod.addFunction(`f${i}`, b.none, b.none, [], mod.block(null, [mod.call(`f${i + 1}`, [], b.none), mod.call(`f${i + 1}`, [], b.none)]));
      mod.addFunction('run', b.none, b.none, [], mod.call('f0', [], b.none));
    }],
    ['a wide fan-out with no loop: 2 000 calls of a function calling a 2 400-instruction leaf 15 times', (mod) => {
      const x = () => mod.global.get('x', i32());
      mod.addGlobal('x', i32(), true, mod.i32.const(1));
      mod.addFunction('h0', b.none, b.none, [], mod.block(null, Array.from({ length: 400 }, (_, k) => mod.global.set('x', mod.i32.add(mod.i32.mul(x(), mod.i32.const(31)), mod.i32.const(k))))));
      mod.addFunction('h1', b.none, b.none, [], mod.block(null, Array.from({ length: 15 }, () => mod.call('h0', [], b.none))));
      mod.addFunction('run', b.none, b.none, [], mod.block(null, Array.from({ length: 2000 }, () => mod.call('h1', [], b.none))));
    }],
    ['a loop of memory.fill over 16 MiB each', (mod) => {
      mod.setMemory(256, 256, null, [], false, false, '0');
      mod.addFunction('run', b.none, b.none, [], mod.loop('l', mod.block(null, [mod.memory.fill(mod.i32.const(0), mod.i32.const(0), mod.i32.const(16 << 20), '0'), mod.br('l')])));
    }],
    ['memory.grow in straight-line code', (mod) => {
      mod.setMemory(1, 65536, null, [], false, false, '0');
      mod.addFunction('run', b.none, b.none, [], mod.block(null, Array.from({ length: 200 }, () => mod.drop(mod.memory.grow(mod.i32.const(1), '0')))));
    }],
    ['tail recursion through a table', (mod) => {
      mod.addTable('t', 1, 1, b.funcref);
      mod.addFunction('f', b.none, b.none, [], mod.return_call_indirect('t', mod.i32.const(0), [], b.none, b.none));
      mod.addActiveElementSegment('t', 'e', ['f'], mod.i32.const(0));
      mod.addFunction('run', b.none, b.none, [], mod.call('f', [], b.none));
    }],
  ];
  for (const [what, build] of unbounded) {
    it(`traps ${what} within its budget`, () => {
      const r = run(moduleOf((mod) => {
        build(mod);
        mod.addFunctionExport('run', 'run');
      }), 1_000_000);
      assert.deepEqual(r, { trapped: true, fuelLeft: 0 });
    });
  }

  it('gives every exported call a full budget; a loop within it runs to the end', () => {
    const bytes = moduleOf((mod) => {
      // count(n): n loop iterations, returns n.
      const n = () => mod.local.get(0, i32());
      const i = () => mod.local.get(1, i32());
      mod.addFunction('count', b.createType([i32()]), i32(), [i32()], mod.block(null, [
        mod.loop('l', mod.block(null, [mod.local.set(1, mod.i32.add(i(), mod.i32.const(1))), mod.br('l', mod.i32.lt_u(i(), n()))])),
        i(),
      ], i32()));
      mod.addFunctionExport('count', 'count');
    });
    const metered = meterModule(bytes, 50_000);
    const ex = new WebAssembly.Instance(new WebAssembly.Module(metered), {}).exports as Record<string, unknown>;
    const count = ex.count as (n: number) => number;
    assert.equal(count(2000), 2000);
    assert.equal(count(2000), 2000, 'a second call starts with a full budget again');
    assert.throws(() => count(10_000), WebAssembly.RuntimeError);
    assert.equal((ex[FUEL_EXPORT] as WebAssembly.Global).value, 0);
  });

  it('checks the start function with the budget the global starts with', () => {
    const bytes = moduleOf((mod) => {
      mod.addFunction('spin', b.none, b.none, [], mod.loop('l', mod.br('l')));
      mod.setStart(mod.getFunction('spin'));
    });
    assert.throws(() => new WebAssembly.Instance(new WebAssembly.Module(meterModule(bytes, 5000)), {}), WebAssembly.RuntimeError);
  });

  it('checks entries only where recursion, indirection or cost call for it, and charges callers for the rest', () => {
    const IMPORTS = 2; // call indices count imported functions first: defined function i is i + 2
    const fn = (cost: number, calls: number[] = [], indirect = false, loops: Array<[cost: number, calls: number[]]> = []): BodyScan => ({
      regions: [{ start: 0, cost, calls: calls.map((c) => c + IMPORTS) }, ...loops.map(([c, l]) => ({ start: 0, cost: c, calls: l.map((x) => x + IMPORTS) }))],
      indirect,
      bulk: [],
      grows: [],
    });
    const table: Array<[what: string, scan: BodyScan, checked: boolean, charges: number[]]> = [
      ['calls the leaf below twice', fn(5, [1, 1]), false, [5 + 2 * 10]],
      ['a leaf of 10 instructions', fn(10), false, [10]],
      ['calls itself', fn(3, [2]), true, [3]],
      ['calls the next, which calls it back', fn(3, [4]), true, [3]],
      ['(the other half of the cycle)', fn(4, [3]), true, [4]],
      ['calls through a table', fn(7, [], true), true, [7]],
      ['costs more than the limit', fn(MAX_UNCHECKED_COST + 1), true, [MAX_UNCHECKED_COST + 1]],
      ['calls the costly one (checked: charges itself)', fn(2, [6]), false, [2]],
      ['calls only an imported function', { regions: [{ start: 0, cost: 3, calls: [0] }], indirect: false, bulk: [], grows: [] }, false, [3]],
      ['a loop calling the leaf: each iteration pays for it', fn(4, [], false, [[6, [1]]]), false, [4, 6 + 10]],
    ];
    const plan = planMetering(table.map(([, scan]) => scan), IMPORTS);
    assert.deepEqual(table.map(([what], i) => [what, plan.checked[i], plan.charges[i]]), table.map(([what, , checked, charges]) => [what, checked, charges]));
  });

  // Hand-assembled: f is declared for ref.func only by its export, which now names its wrapper.
  const section = (id: number, payload: number[]) => [id, payload.length, ...payload];
  const REF_FUNC_MODULE = Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [2, 0x60, 0, 1, 0x7f, 0x60, 0, 1, 0x70]), // () -> i32, () -> funcref
    ...section(3, [2, 0, 1]),
    ...section(7, [2, 1, 0x66, 0, 0, 1, 0x67, 0, 1]), // f, g
    ...section(10, [2, 4, 0, 0x41, 7, 0x0b, 4, 0, 0xd2, 0, 0x0b]), // f: i32.const 7; g: ref.func f
  ]);

  it('keeps exported functions referable by ref.func (the export declared them)', () => {
    assert.ok(WebAssembly.validate(REF_FUNC_MODULE));
    assert.equal(run(REF_FUNC_MODULE, 1000, 'f').result, 7);
  });

  it('charges a bulk operation by its length: a 16 MiB fill needs 1 Mi of fuel', () => {
    const bytes = moduleOf((mod) => {
      mod.setMemory(256, 256, null, [], false, false, '0');
      mod.addFunction('run', b.none, b.none, [], mod.memory.fill(mod.i32.const(0), mod.i32.const(1), mod.i32.const(16 << 20), '0'));
      mod.addFunctionExport('run', 'run');
    });
    assert.equal(run(bytes, 1_000_000).trapped, true);
    assert.equal(run(bytes, 1_100_000).trapped, false);
  });

  const refused: Array<[what: string, bytes: () => Uint8Array, message: RegExp]> = [
    ['atomics', () => moduleOf((mod) => {
      mod.setMemory(1, 1, null, [], true, false, '0');
      mod.addFunction('run', b.none, i32(), [], mod.i32.atomic.load(0, mod.i32.const(0), '0'));
      mod.addFunctionExport('run', 'run');
    }), /unsupported instruction 0xfe/],
    ['a truncated body', () => {
      const good = moduleOf((mod) => { mod.addFunction('run', b.none, b.none, [], mod.loop('l', mod.br('l'))); });
      return good.subarray(0, good.length - 2);
    }, /unexpected end|at byte/],
    ['not WebAssembly', () => Buffer.from('#!/bin/sh\n'), /not a WebAssembly 1\.0 module/],
    ['table.grow (its time grows with its operand)', () => moduleOf((mod) => {
      mod.addTable('t', 1, 100, b.funcref);
      mod.addFunction('run', b.none, i32(), [], mod.table.grow('t', mod.ref.null(b.funcref), mod.i32.const(10)));
      mod.addFunctionExport('run', 'run');
    }), /table\.grow is not allowed/],
    ['tables larger than the cap', () => Uint8Array.from([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      ...section(4, [1, 0x70, 0x00, 0x81, 0x80, 0x04]), // one funcref table of at least 65 537 entries
    ]), new RegExp(`more than ${MAX_TABLE_ENTRIES} entries`)],
  ];
  for (const [what, bytes, message] of refused) {
    it(`refuses ${what}, saying where`, () => {
      assert.throws(() => meterModule(bytes(), 1000), (err: unknown) => {
        assert.ok(err instanceof WasmFormatError || err instanceof Error);
        assert.match((err as Error).message, message);
        return true;
      });
    });
  }
});
