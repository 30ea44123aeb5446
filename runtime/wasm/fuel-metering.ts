// Stuck-code containment. V8 cannot interrupt Wasm running on the main thread without killing
// Node (terminating execution corrupts its async-hook stack; measured), so the budget lives in
// the module: fuel is a count of instructions, kept in a global the module exports, and at load
// time the binary is rewritten to charge it as the code runs. Every exported function is wrapped
// to set the budget before it runs. A call that runs out traps like any other trap: its
// connection gets a local error, the instance is replaced, everything else keeps serving.
//
// What is charged, and where (wasm-code.ts cuts each body into regions):
//  - each loop iteration is charged its body's instructions when it starts;
//  - a function is charged its top-level instructions at entry if it can recurse (a cycle in the
//    call graph; tail calls never overflow the stack, so they count too), calls through a table
//    or a reference, or costs more than MAX_UNCHECKED_COST; any other function is "unchecked":
//    its top-level cost is added to every region that calls it, so leaf helpers run with no
//    check of their own and nothing goes uncharged;
//  - memory.fill, memory.copy and memory.init are charged one unit per 16 bytes of their length
//    operand, and memory.grow GROW_COST, just before they run: their time grows with the
//    operand, not with the instruction count (and charging them only when they run keeps an
//    allocator that rarely grows from paying for it on every call).
// A check is "if fuel < cost: fuel = 0, trap; fuel -= cost". Instructions the scanner cannot
// read, and the table operations whose time grows with an operand, are refused. Tables are
// capped like memory is: their declared sizes may total MAX_TABLE_ENTRIES at most.
// Binaryen's log-execution pass, used before, counted loop iterations and calls whatever they
// cost, checked every entry and exit, and cost ~75 MB to load.

import { encodeS32, encodeU32, readSections, sectionRank, SectionId, WasmReader, WasmWriter, type Section } from './wasm-binary';
import { GROW_COST, scanBody, type BodyScan } from './wasm-code';

export const FUEL_EXPORT = 'meltemi_fuel';

/** A function whose top level, with its unchecked callees, costs more than this is checked itself. */
export const MAX_UNCHECKED_COST = 50;
export const MAX_TABLE_ENTRIES = 65_536;
/** memory.fill/copy/init: one unit of fuel per 2^BULK_SHIFT bytes. */
const BULK_SHIFT = 4;
const MAX_CHARGE = 0x7fff_ffff;

interface Body {
  readonly start: number;
  /** After the locals: where the instructions start. */
  readonly codeStart: number;
  readonly end: number;
  /** Locals declared (not counting parameters) and their groups. */
  readonly locals: number;
  readonly localGroups: number;
  readonly scan: BodyScan;
}

interface ModuleInfo {
  readonly typeParams: number[];
  readonly importedFuncs: number;
  readonly importedGlobals: number;
  readonly definedGlobals: number;
  readonly funcTypes: number[];
  readonly exports: Array<{ name: string; kind: number; index: number }>;
  readonly elementSegments: number;
  readonly bodies: Body[];
}

function readInfo(bytes: Uint8Array, sections: readonly Section[]): ModuleInfo {
  const typeParams: number[] = [];
  let importedFuncs = 0;
  let importedGlobals = 0;
  let definedGlobals = 0;
  let tableEntries = 0;
  let elementSegments = 0;
  const funcTypes: number[] = [];
  const exportList: ModuleInfo['exports'] = [];
  const bodies: Body[] = [];
  const table = (r: WasmReader) => {
    r.valType();
    tableEntries += r.limits();
    if (tableEntries > MAX_TABLE_ENTRIES) r.fail(`tables declare more than ${MAX_TABLE_ENTRIES} entries`);
  };
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
            table(r);
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
      case SectionId.table:
        for (let n = r.u32(), i = 0; i < n; i++) table(r);
        break;
      case SectionId.memory:
        for (let n = r.u32(), i = 0; i < n; i++) r.limits();
        break;
      case SectionId.global:
        definedGlobals = r.u32();
        break;
      case SectionId.export:
        for (let n = r.u32(), i = 0; i < n; i++) exportList.push({ name: r.name(), kind: r.byte(), index: r.u32() });
        break;
      case SectionId.element:
        elementSegments = r.u32();
        break;
      case SectionId.code: {
        const n = r.u32();
        if (n !== funcTypes.length) r.fail(`code section has ${n} bodies for ${funcTypes.length} functions`);
        for (let i = 0; i < n; i++) {
          const size = r.u32();
          const start = r.pos;
          r.skip(size);
          const body = new WasmReader(bytes, start, start + size);
          const localGroups = body.u32();
          let locals = 0;
          for (let g = 0; g < localGroups; g++) {
            locals += body.u32();
            body.valType();
          }
          const codeStart = body.pos;
          bodies.push({ start, codeStart, end: start + size, locals, localGroups, scan: scanBody(body) });
        }
        break;
      }
    }
  }
  if (bodies.length !== funcTypes.length) throw new Error(`${funcTypes.length} functions declared, ${bodies.length} bodies`);
  return { typeParams, importedFuncs, importedGlobals, definedGlobals, funcTypes, exports: exportList, elementSegments, bodies };
}

export interface MeteringPlan {
  /** Per defined function: whether its entry is checked. */
  readonly checked: boolean[];
  /** Per defined function: what its top level costs a caller when it is not checked. */
  readonly weight: number[];
  /** Per defined function, per region: the charge at the region's start (regions[0]: only if checked). */
  readonly charges: number[][];
}

/** Strongly connected components of the call graph, callees first (Tarjan's, iteratively). */
function componentsOf(callees: number[][]): number[][] {
  const n = callees.length;
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
  return order;
}

/** Which entries are checked and what every region is charged (indices: defined functions). */
export function planMetering(scans: readonly BodyScan[], importedFuncs: number): MeteringPlan {
  const n = scans.length;
  const local = (c: number) => c - importedFuncs;
  for (const scan of scans) {
    for (const region of scan.regions) for (const c of region.calls) if (local(c) >= n) throw new Error(`call to function ${c}, which does not exist`);
  }
  const callees = scans.map((s) => s.regions.flatMap((r) => r.calls.filter((c) => c >= importedFuncs).map(local)));
  const checked = scans.map((s) => s.indirect);
  const weight = new Array<number>(n).fill(0);
  // A region's charge: its own instructions and, for each call to an unchecked function, that
  // function's weight (a checked callee charges itself; an imported one is the host's).
  const chargeOf = (region: BodyScan['regions'][number]) => {
    let c = region.cost;
    for (const callee of region.calls) if (callee >= importedFuncs && !checked[local(callee)]) c += weight[local(callee)];
    return Math.min(c, MAX_CHARGE);
  };
  for (const component of componentsOf(callees)) {
    if (component.length > 1 || callees[component[0]].includes(component[0])) {
      for (const f of component) checked[f] = true;
      continue;
    }
    const f = component[0];
    weight[f] = chargeOf(scans[f].regions[0]);
    if (weight[f] > MAX_UNCHECKED_COST) checked[f] = true;
  }
  const charges = scans.map((s) => s.regions.map(chargeOf));
  return { checked, weight, charges };
}

/** "if fuel < cost: fuel = 0, trap; fuel -= cost" on global `g`. */
function staticCheck(g: number[], cost: number): number[] {
  const c = encodeS32(cost);
  return [0x23, ...g, 0x41, ...c, 0x49, 0x04, 0x40, 0x41, 0x00, 0x24, ...g, 0x00, 0x0b, 0x23, ...g, 0x41, ...c, 0x6b, 0x24, ...g];
}

/** The same with cost = (top of stack) >> BULK_SHIFT, the operand left in place via scratch local `s`. */
function bulkCheck(g: number[], s: number[]): number[] {
  const cost = [0x20, ...s, 0x41, BULK_SHIFT, 0x76];
  return [0x22, ...s, 0x23, ...g, ...cost, 0x49, 0x04, 0x40, 0x41, 0x00, 0x24, ...g, 0x00, 0x0b, 0x23, ...g, ...cost, 0x6b, 0x24, ...g];
}

/** Returns `bytes` metered: FUEL_EXPORT (holding `budget` for the start function), checks, refilling export wrappers. */
export function meterModule(bytes: Uint8Array, budget: number): Uint8Array {
  if (!Number.isInteger(budget) || budget < 1 || budget > MAX_CHARGE) throw new RangeError(`fuel budget ${budget} out of range`);
  const sections = readSections(bytes);
  const info = readInfo(bytes, sections);
  if (info.exports.some((e) => e.name === FUEL_EXPORT)) throw new Error(`the module already exports "${FUEL_EXPORT}"`);
  const plan = planMetering(info.bodies.map((b) => b.scan), info.importedFuncs);
  const fuelIndex = info.importedGlobals + info.definedGlobals;
  const g = encodeU32(fuelIndex);
  // A wrapper's refill leaves out what its unchecked target's top level costs (no check charges it).
  const refillFor = (f: number) => {
    const local = f - info.importedFuncs;
    return [0x41, ...encodeS32(Math.max(0, budget - (plan.checked[local] ? 0 : plan.weight[local]))), 0x24, ...g];
  };

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
    const body = new WasmWriter();
    info.bodies.forEach((b, i) => {
      body.length = 0;
      const scan = b.scan;
      const params = info.typeParams[info.funcTypes[i]];
      if (params === undefined) throw new Error(`function ${i + info.importedFuncs} has no type`);
      const scratch = encodeU32(params + b.locals);
      if (scan.bulk.length > 0) {
        // One more local, an i32, holds a bulk operation's length while it is charged.
        const groupsEnd = new WasmReader(bytes, b.start, b.codeStart);
        groupsEnd.u32();
        body.u32(b.localGroups + 1).bytes(bytes.subarray(groupsEnd.pos, b.codeStart)).bytes([0x01, 0x7f]);
      } else {
        body.bytes(bytes.subarray(b.start, b.codeStart));
      }
      // Insertion points in order: region starts (a check) and bulk operations (a length charge).
      const points: Array<[at: number, code: number[]]> = [];
      scan.regions.forEach((r, k) => {
        if (k > 0 || plan.checked[i]) points.push([r.start, staticCheck(g, plan.charges[i][k])]);
      });
      for (const at of scan.bulk) points.push([at, bulkCheck(g, scratch)]);
      for (const at of scan.grows) points.push([at, staticCheck(g, GROW_COST)]);
      points.sort((x, y) => x[0] - y[0]);
      let from = b.codeStart;
      for (const [at, code] of points) {
        body.bytes(bytes.subarray(from, at)).bytes(code);
        from = at;
      }
      body.bytes(bytes.subarray(from, b.end));
      w.u32(body.length).bytes(body.finish());
    });
    for (const f of wrapperOf.keys()) {
      const params = info.typeParams[info.funcTypes[f - info.importedFuncs]];
      body.length = 0;
      body.u32(0).bytes(refillFor(f));
      for (let p = 0; p < params; p++) body.bytes([0x20, ...encodeU32(p)]);
      body.bytes([0x10, ...encodeU32(f), 0x0b]);
      w.u32(body.length).bytes(body.finish());
    }
    return w.finish();
  };
  const appendTo = (s: Section | undefined, count: number, entry: number[]) => {
    const w = new WasmWriter().u32(count + 1);
    if (s) {
      const r = new WasmReader(bytes, s.start, s.end);
      r.u32();
      w.bytes(bytes.subarray(r.pos, s.end));
    }
    return w.bytes(entry).finish();
  };
  const globalSection = (s: Section | undefined) => appendTo(s, info.definedGlobals, [0x7f, 0x01, 0x41, ...encodeS32(budget), 0x0b]);
  // The wrapped functions stay referable by ref.func: exporting them declared them before.
  const elementSection = (s: Section | undefined) => appendTo(s, info.elementSegments, [0x03, 0x00, ...encodeU32(wrapperOf.size), ...[...wrapperOf.keys()].flatMap(encodeU32)]);
  const exportSection = () => {
    const w = new WasmWriter().u32(info.exports.length + 1);
    for (const e of info.exports) w.name(e.name).bytes([e.kind]).u32(e.kind === 0 ? wrapperOf.get(e.index) ?? e.index : e.index);
    return w.name(FUEL_EXPORT).bytes([0x03]).u32(fuelIndex).finish();
  };

  const out = new WasmWriter().bytes(bytes.subarray(0, 8));
  const emit = (id: number, payload: Uint8Array) => out.bytes([id]).u32(payload.length).bytes(payload);
  const build: Partial<Record<number, (s: Section | undefined) => Uint8Array>> = {
    [SectionId.function]: functionSection,
    [SectionId.code]: codeSection,
    [SectionId.global]: globalSection,
    [SectionId.export]: exportSection,
  };
  if (wrapperOf.size > 0) build[SectionId.element] = elementSection;
  const missing = [SectionId.global, SectionId.export, SectionId.element].filter((id) => build[id] && !sections.some((s) => s.id === id));
  const emitMissingBefore = (rank: number) => {
    while (missing.length > 0 && sectionRank(missing[0]) < rank) {
      const id = missing.shift()!;
      emit(id, build[id]!(undefined));
    }
  };
  for (const s of sections) {
    if (s.id !== SectionId.custom) emitMissingBefore(sectionRank(s.id));
    const rebuild = s.id === SectionId.custom ? undefined : build[s.id];
    emit(s.id, rebuild ? rebuild(s) : bytes.subarray(s.start, s.end));
  }
  emitMissingBefore(Infinity);
  return out.finish();
}
