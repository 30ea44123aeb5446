// Stuck-loop containment. V8 cannot interrupt Wasm running on the main thread without killing
// Node (terminating execution corrupts its async-hook stack; measured), so the budget lives in
// the module: at load time every loop header and function entry gets "fuel -= 1; if fuel < 0
// then trap" on an exported global, and the host refills the global before each call. A call
// that runs out traps like any other trap: its connection gets a local error, the instance is
// replaced, everything else keeps serving. Binaryen (already installed by AssemblyScript)
// does the rewriting: its log-execution pass marks the points, and the logger it imports is
// replaced by the fuel check and inlined.

export const FUEL_EXPORT = 'meltemi_fuel';

type Binaryen = any; // eslint-disable-line @typescript-eslint/no-explicit-any
let binaryen: Promise<Binaryen> | undefined;

// binaryen is ESM with top-level await: require() cannot load it, and TypeScript's CommonJS
// output would turn import() into require(). A real dynamic import keeps it lazy too.
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<{ default: Binaryen }>;

export function loadBinaryen(): Promise<Binaryen> {
  binaryen ??= importEsm('binaryen').then((m) => m.default);
  return binaryen;
}

/** Returns `bytes` with fuel metering added (and the FUEL_EXPORT global exported, holding `initialFuel`). */
export async function meterModule(bytes: Uint8Array, initialFuel = 0): Promise<Uint8Array> {
  const b = await loadBinaryen();
  const mod = b.readBinary(bytes);
  try {
    mod.setFeatures(b.Features.All);
    mod.runPasses(['log-execution']);
    let logger: { name: string; params: number } | undefined;
    for (let i = 0; i < mod.getNumFunctions(); i++) {
      const f = b.getFunctionInfo(mod.getFunctionByIndex(i));
      if (f.module === 'env' && f.base === 'log_execution') logger = f;
    }
    if (!logger) throw new Error('log-execution pass added no import');
    mod.removeFunction(logger.name);
    // The initial value is the budget of the start function, which runs before the host can set it.
    mod.addGlobal(FUEL_EXPORT, b.i32, true, mod.i32.const(initialFuel));
    mod.addGlobalExport(FUEL_EXPORT, FUEL_EXPORT);
    const fuel = () => mod.global.get(FUEL_EXPORT, b.i32);
    mod.addFunction(logger.name, logger.params, b.none, [], mod.block(null, [
      mod.global.set(FUEL_EXPORT, mod.i32.sub(fuel(), mod.i32.const(1))),
      mod.if(mod.i32.lt_s(fuel(), mod.i32.const(0)), mod.unreachable()),
    ]));
    b.setOptimizeLevel(2);
    b.setShrinkLevel(0);
    // The check must be inlined at every point: left a function, it costs a call at each of
    // them (measured: 2.3x the time of an unmetered filter call). Binaryen's default limit
    // (2) leaves it out; 16 covers it and little else.
    const alwaysInline = b.getAlwaysInlineMaxSize();
    b.setAlwaysInlineMaxSize(16);
    try {
      // Plain inlining: the full inlining-optimizing pass re-optimises the whole module (~0.5 s).
      mod.runPasses(['inlining']);
    } finally {
      b.setAlwaysInlineMaxSize(alwaysInline);
    }
    if (!mod.validate()) throw new Error('metered module does not validate');
    return mod.emitBinary();
  } finally {
    mod.dispose();
  }
}
