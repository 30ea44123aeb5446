// Fuel metering as a binary rewrite: whatever shape unbounded work takes — a loop, recursion,
// a tail call that never grows the stack, a call tree that doubles at every level, a call
// through a table — a call runs out of its budget and traps; exported functions start each call
// with a full budget; leaf helpers are not checked; and instructions the rewriter cannot read
// are refused rather than passed through unmetered. Modules are built with Binaryen here.

import assert from 'node:assert/strict';
import { checkedEntries, FUEL_EXPORT, MAX_UNCHECKED_CALLS, meterModule } from '../runtime/wasm/fuel-metering';
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
      }), 100_000);
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
    const metered = meterModule(bytes, 1000);
    const ex = new WebAssembly.Instance(new WebAssembly.Module(metered), {}).exports as Record<string, unknown>;
    const count = ex.count as (n: number) => number;
    assert.equal(count(900), 900);
    assert.equal(count(900), 900, 'a second call starts with a full budget again');
    assert.throws(() => count(1001), WebAssembly.RuntimeError);
    assert.equal((ex[FUEL_EXPORT] as WebAssembly.Global).value, 0);
  });

  it('checks the start function with the budget the global starts with', () => {
    const bytes = moduleOf((mod) => {
      mod.addFunction('spin', b.none, b.none, [], mod.loop('l', mod.br('l')));
      mod.setStart(mod.getFunction('spin'));
    });
    assert.throws(() => new WebAssembly.Instance(new WebAssembly.Module(meterModule(bytes, 5000)), {}), WebAssembly.RuntimeError);
  });

  it('checks entries only where recursion, indirection or fan-out can hide work', () => {
    const IMPORTS = 2; // call indices count imported functions first: defined function i is i + 2
    const scan = (calls: number[], indirect = false) => ({ scan: { loopStarts: [], calls: calls.map((c) => c + IMPORTS), indirect } });
    const table: Array<[what: string, body: ReturnType<typeof scan>, checked: boolean]> = [
      ['calls a leaf twice (3 bodies)', scan([1, 1]), false],
      ['a leaf', scan([]), false],
      ['calls itself', scan([2]), true],
      ['calls the next, which calls it back', scan([4]), true],
      ['(the other half of the cycle)', scan([3]), true],
      ['calls through a table', scan([], true), true],
      [`calls a leaf ${MAX_UNCHECKED_CALLS} times (1 + ${MAX_UNCHECKED_CALLS} bodies)`, scan(Array.from({ length: MAX_UNCHECKED_CALLS }, () => 1)), true],
      ['calls the fan-out above (checked: counts as one)', scan([6]), false],
      ['calls only an imported function', { scan: { loopStarts: [], calls: [0], indirect: false } }, false],
    ];
    const checked = checkedEntries(table.map(([, body]) => body), IMPORTS);
    assert.deepEqual(table.map(([what], i) => [what, checked[i]]), table.map(([what, , c]) => [what, c]));
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
