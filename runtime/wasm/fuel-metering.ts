// Stuck-code containment. V8 cannot interrupt Wasm running on the main thread without killing
// Node (terminating execution corrupts its async-hook stack; measured), so the budget lives in
// the module: at load time the places where unbounded work can happen get "if fuel == 0 then
// trap; fuel -= 1" on a global the module exports, and every exported function is wrapped to
// set the budget before it runs. A call that runs out traps like any other trap: its connection
// gets a local error, the instance is replaced, everything else keeps serving.
//
// Where the checks go, so that work between two checks stays bounded by the code's size:
//  - every loop header (one check per iteration);
//  - the entry of every function that can recurse (a cycle in the call graph, tail calls
//    included: those never overflow the stack), that calls through a table or a reference, or
//    whose calls fan out — a call tree of unchecked functions is cut once it would run more than
//    MAX_UNCHECKED_CALLS function bodies, so a chain of functions each calling the next twice
//    cannot run 2^n of them unchecked.
// Leaf helpers and small call trees, where a codec spends most of its calls, run unchecked.
// Binaryen's log-execution pass, used before, also checks every function entry and every exit,
// costs ~75 MB to load, and makes the accepting worker slow to start: a rewrite of the binary
// here does less, knows exactly what it checks, and refuses what it cannot read.

import { encodeS32, encodeU32, readSections, sectionRank, SectionId, WasmReader, WasmWriter, type Section } from './wasm-binary';
import { scanBody, type BodyScan } from './wasm-code';

export const FUEL_EXPORT = 'meltemi_fuel';

/** Unchecked function bodies one call may run between two checks. */
export const MAX_UNCHECKED_CALLS = 16;

interface ModuleInfo {
  /** Each type's parameter count and whether it is a function type we can wrap. */
  readonly typeParams: number[];
  readonly importedFuncs: number;
  readonly importedGlobals: number;
  readonly definedGlobals: number;
  /** Type index of each defined function. */
  readonly funcTypes: number[];
  readonly exports: Array<{ name: string; kind: number; index: number }>;
  readonly bodies: Array<{ start: number; codeStart: number; end: number; scan: BodyScan }>;
}

function readInfo(bytes: Uint8Array, sections: readonly Section[]): ModuleInfo {
  const typeParams: number[] = [];
  let importedFuncs = 0;
  let importedGlobals = 0;
  let definedGlobals = 0;
  const funcTypes: number[] = [];
  const exports: ModuleInfo['exports'] = [];
  const bodies: ModuleInfo['bodies'] = [];
  for (const s of sections) {
    const r = new WasmReader(bytes, s.start, s.end);
    switch (s.id) {
      case SectionId.type:
        for (let n = r.u32(), i = 0; i < n; i++) {
          const form = r.byte();
          if (form !== 0x60) r.fail(`unsupported type form 0x${form.toString(16)} (GC types are not metered)`, r.pos - 1);
          const params = r.u32();
          for (let p = 0; p < params; p++) r.valType();
          for (let k = r.u32(), j = 0; j < k; j++) r.valType();
          typeParams.push(params);
        }
        break;
      case SectionId.import:
        for (let n = r.u32(), i = 0; i < n; i++) {
          r.name();
          r.name();
          const kind = r.byte();
          if (kind === 0) {
            r.u32();
            importedFuncs++;
          } else if (kind === 1) {
            r.valType();
            r.limits();
          } else if (kind === 2) {
            r.limits();
          } else if (kind === 3) {
            r.valType();
            r.byte();
            importedGlobals++;
          } else {
            r.fail(`unsupported import kind ${kind}`, r.pos - 1);
          }
        }
        break;
      case SectionId.function:
        for (let n = r.u32(), i = 0; i < n; i++) funcTypes.push(r.u32());
        break;
      case SectionId.global:
        definedGlobals = r.u32();
        break;
      case SectionId.export:
        for (let n = r.u32(), i = 0; i < n; i++) exports.push({ name: r.name(), kind: r.byte(), index: r.u32() });
        break;
      case SectionId.code: {
        const n = r.u32();
        if (n !== funcTypes.length) r.fail(`code section has ${n} bodies for ${funcTypes.length} functions`);
        for (let i = 0; i < n; i++) {
          const size = r.u32();
          const start = r.pos;
          r.skip(size);
          const body = new WasmReader(bytes, start, start + size);
          for (let groups = body.u32(), g = 0; g < groups; g++) {
            body.u32();
            body.valType();
          }
          const codeStart = body.pos;
          bodies.push({ start, codeStart, end: start + size, scan: scanBody(body) });
        }
        break;
      }
    }
  }
  if (bodies.length !== funcTypes.length) throw new Error(`${funcTypes.length} functions declared, ${bodies.length} bodies`);
  return { typeParams, importedFuncs, importedGlobals, definedGlobals, funcTypes, exports, bodies };
}

/**
 * Which defined functions get a check at entry: those in a call-graph cycle, those with
 * indirect calls, and those whose unchecked call tree would exceed MAX_UNCHECKED_CALLS.
 */
export function checkedEntries(bodies: ReadonlyArray<{ scan: BodyScan }>, importedFuncs: number): boolean[] {
  const n = bodies.length;
  const callees = bodies.map((b) => b.scan.calls.filter((c) => c >= importedFuncs).map((c) => c - importedFuncs));
  for (const list of callees) for (const c of list) if (c >= n) throw new Error(`call to function ${c + importedFuncs}, which does not exist`);
  const checked = bodies.map((b) => b.scan.indirect);
  // Tarjan's strongly connected components, iteratively (a deep call chain must not overflow
  // the host's stack); components come out callees first, which the weights below need.
  const index = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const onStack = new Array<boolean>(n).fill(false);
  const stack: number[] = [];
  const order: number[][] = [];
  let next = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    const work: Array<[node: number, edge: number]> = [[root, 0]];
    index[root] = low[root] = next++;
    stack.push(root);
    onStack[root] = true;
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [v, e] = frame;
      if (e < callees[v].length) {
        frame[1]++;
        const w = callees[v][e];
        if (index[w] === -1) {
          index[w] = low[w] = next++;
          stack.push(w);
          onStack[w] = true;
          work.push([w, 0]);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v], index[w]);
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low[parent] = Math.min(low[parent], low[v]);
      }
      if (low[v] === index[v]) {
        const component: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = false;
          component.push(w);
        } while (w !== v);
        order.push(component);
      }
    }
  }
  const weight = new Array<number>(n).fill(1);
  for (const component of order) {
    if (component.length > 1 || callees[component[0]].includes(component[0])) {
      for (const f of component) checked[f] = true;
      continue;
    }
    const f = component[0];
    let w = 1;
    for (const c of callees[f]) w += checked[c] ? 1 : weight[c];
    weight[f] = w;
    if (w > MAX_UNCHECKED_CALLS) checked[f] = true;
  }
  return checked;
}

/** Returns `bytes` with fuel checks, the FUEL_EXPORT global (holding `budget` for the start function) and refilling export wrappers. */
export function meterModule(bytes: Uint8Array, budget: number): Uint8Array {
  if (!Number.isInteger(budget) || budget < 1 || budget > 0x7fff_ffff) throw new RangeError(`fuel budget ${budget} out of range`);
  const sections = readSections(bytes);
  const info = readInfo(bytes, sections);
  if (info.exports.some((e) => e.name === FUEL_EXPORT)) throw new Error(`the module already exports "${FUEL_EXPORT}"`);
  const checked = checkedEntries(info.bodies, info.importedFuncs);
  const fuel = encodeU32(info.importedGlobals + info.definedGlobals);
  const check = [0x23, ...fuel, 0x45, 0x04, 0x40, 0x00, 0x0b, 0x23, ...fuel, 0x41, 0x01, 0x6b, 0x24, ...fuel];
  const refill = [0x41, ...encodeS32(budget), 0x24, ...fuel];

  const wrapped = info.exports.filter((e) => e.kind === 0 && e.index >= info.importedFuncs);
  const firstWrapper = info.importedFuncs + info.funcTypes.length;
  const wrapperOf = new Map<number, number>();
  for (const e of wrapped) if (!wrapperOf.has(e.index)) wrapperOf.set(e.index, firstWrapper + wrapperOf.size);

  const functionSection = () => {
    const w = new WasmWriter().u32(info.funcTypes.length + wrapperOf.size);
    for (const t of info.funcTypes) w.u32(t);
    for (const f of wrapperOf.keys()) w.u32(info.funcTypes[f - info.importedFuncs]);
    return w.finish();
  };
  const codeSection = () => {
    const w = new WasmWriter().u32(info.bodies.length + wrapperOf.size);
    info.bodies.forEach((b, i) => {
      const body = new WasmWriter().bytes(bytes.subarray(b.start, b.codeStart));
      if (checked[i]) body.bytes(check);
      let from = b.codeStart;
      for (const at of b.scan.loopStarts) {
        body.bytes(bytes.subarray(from, at)).bytes(check);
        from = at;
      }
      body.bytes(bytes.subarray(from, b.end));
      w.u32(body.length).bytes(body.finish());
    });
    for (const f of wrapperOf.keys()) {
      const params = info.typeParams[info.funcTypes[f - info.importedFuncs]];
      if (params === undefined) throw new Error(`function ${f} has no type`);
      const body = new WasmWriter().u32(0).bytes(refill);
      for (let p = 0; p < params; p++) body.bytes([0x20, ...encodeU32(p)]);
      body.bytes([0x10, ...encodeU32(f), 0x0b]);
      w.u32(body.length).bytes(body.finish());
    }
    return w.finish();
  };
  const globalSection = (s: Section | undefined) => {
    const w = new WasmWriter().u32(info.definedGlobals + 1);
    if (s) {
      const r = new WasmReader(bytes, s.start, s.end);
      r.u32();
      w.bytes(bytes.subarray(r.pos, s.end));
    }
    return w.bytes([0x7f, 0x01, 0x41, ...encodeS32(budget), 0x0b]).finish();
  };
  const exportSection = () => {
    const w = new WasmWriter().u32(info.exports.length + 1);
    for (const e of info.exports) w.name(e.name).bytes([e.kind]).u32(e.kind === 0 ? wrapperOf.get(e.index) ?? e.index : e.index);
    return w.name(FUEL_EXPORT).bytes([0x03]).u32(info.importedGlobals + info.definedGlobals).finish();
  };

  const out = new WasmWriter().bytes(bytes.subarray(0, 8));
  const emit = (id: number, payload: Uint8Array) => out.bytes([id]).u32(payload.length).bytes(payload);
  const has = (id: number) => sections.some((s) => s.id === id);
  const pending = new Set<number>([SectionId.global, SectionId.export].filter((id) => !has(id)));
  const emitMissingBefore = (rank: number) => {
    for (const id of [...pending]) {
      if (sectionRank(id) < rank) {
        emit(id, id === SectionId.global ? globalSection(undefined) : exportSection());
        pending.delete(id);
      }
    }
  };
  for (const s of sections) {
    if (s.id !== SectionId.custom) emitMissingBefore(sectionRank(s.id));
    switch (s.id) {
      case SectionId.function: emit(s.id, functionSection()); break;
      case SectionId.code: emit(s.id, codeSection()); break;
      case SectionId.global: emit(s.id, globalSection(s)); break;
      case SectionId.export: emit(s.id, exportSection()); break;
      default: emit(s.id, bytes.subarray(s.start, s.end));
    }
  }
  emitMissingBefore(Infinity);
  return out.finish();
}
