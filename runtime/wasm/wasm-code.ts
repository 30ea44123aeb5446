// Walks a function body instruction by instruction, knowing every immediate of the instruction
// sets meltemi meters: MVP, sign extension, saturating conversions, bulk memory, reference
// types, multi-memory, tail calls and SIMD (with relaxed SIMD). Anything else — atomics,
// exception handling, GC — is refused by name: an instruction whose immediates were guessed
// could hide a loop from the metering. So are the table instructions whose time grows with an
// operand (table.grow, table.fill, table.copy, table.init): plugins have no use for them.
//
// The body is cut into regions for metering: the function's top level, and each loop's body
// (one iteration). A region's cost is the instructions lexically in it, not in a nested loop;
// the metering charges it where the region starts.

import { WasmReader } from './wasm-binary';

/** What one `memory.grow` is charged: 0.1–1 ms measured per call, growing with the memory. */
export const GROW_COST = 1 << 17;

export interface Region {
  /** Where the region's check goes: the body's first instruction, or just after `loop`'s block type. */
  readonly start: number;
  /** Instructions in the region. */
  cost: number;
  /** Callees of `call` and `return_call` in the region, one entry per call site. */
  readonly calls: number[];
}

export interface BodyScan {
  /** regions[0] is the function's top level; the others are loop bodies, in order of their start. */
  readonly regions: Region[];
  /** The body calls through a table or a reference: its callees cannot be known. */
  indirect: boolean;
  /** Offsets of memory.fill, memory.copy and memory.init: each is charged its length operand. */
  readonly bulk: number[];
  /** Offsets of memory.grow: each is charged GROW_COST when it runs. */
  readonly grows: number[];
}

const LAST_SIMD_OP = 0x113; // relaxed SIMD ends at i32x4.relaxed_dot_i8x16_i7x16_add_s

function memarg(r: WasmReader): void {
  const align = r.u32();
  if (align & 0x40) r.u32(); // multi-memory: the memory index follows
  r.skipLeb(64);
}

function simd(r: WasmReader, at: number): void {
  const op = r.u32();
  if (op <= 11 || op === 92 || op === 93) return memarg(r);
  if (op === 12 || op === 13) return r.skip(16); // v128.const, i8x16.shuffle
  if (op >= 21 && op <= 34) return r.skip(1); // extract/replace lane
  if (op >= 84 && op <= 91) {
    memarg(r);
    return r.skip(1); // load/store lane
  }
  if (op > LAST_SIMD_OP) r.fail(`unsupported SIMD instruction 0xfd ${op}`, at);
}

/** Reads a 0xfc instruction; true when it is a bulk memory operation charged by its length. */
function misc(r: WasmReader, at: number): boolean {
  const op = r.u32();
  if (op <= 7) return false; // saturating truncations
  switch (op) {
    case 8: r.u32(); r.u32(); return true; // memory.init data mem
    case 9: case 13: case 16: r.u32(); return false; // data.drop, elem.drop, table.size
    case 10: r.u32(); r.u32(); return true; // memory.copy
    case 11: r.u32(); return true; // memory.fill
    case 12: case 14: case 15: case 17:
      return r.fail(`table.${({ 12: 'init', 14: 'copy', 15: 'grow', 17: 'fill' } as Record<number, string>)[op]} is not allowed in a metered plugin (its time grows with its operand)`, at);
    default: return r.fail(`unsupported instruction 0xfc ${op}`, at);
  }
}

/** Scans the instructions from `r.pos` to `r.end` (a body after its locals). */
export function scanBody(r: WasmReader): BodyScan {
  let region: Region = { start: r.pos, cost: 0, calls: [] };
  const scan: BodyScan = { regions: [region], indirect: false, bulk: [], grows: [] };
  // The region each open block belongs to; a loop opens a region of its own.
  const frames: Region[] = [region];
  let depth = 1;
  while (!r.done) {
    const at = r.pos;
    const op = r.byte();
    region.cost++;
    if (op >= 0x45 && op <= 0xc4) continue; // numeric, no immediates
    if (op >= 0x28 && op <= 0x3e) {
      memarg(r);
      continue;
    }
    switch (op) {
      case 0x00: case 0x01: case 0x0f: case 0x1a: case 0x1b: case 0xd1: case 0xd3: case 0xd4:
        break;
      case 0x02: case 0x04:
        r.blockType();
        depth++;
        frames.push(region);
        break;
      case 0x03:
        r.blockType();
        depth++;
        region = { start: r.pos, cost: 0, calls: [] };
        scan.regions.push(region);
        frames.push(region);
        break;
      case 0x05:
        break;
      case 0x0b:
        depth--;
        if (depth === 0 && !r.done) r.fail('code after the end of the function', at);
        frames.pop();
        if (frames.length > 0) region = frames[frames.length - 1];
        break;
      case 0x0c: case 0x0d: case 0xd5: case 0xd6:
        r.u32();
        break;
      case 0x0e: {
        const n = r.u32();
        for (let i = 0; i <= n; i++) r.u32();
        break;
      }
      case 0x10: case 0x12:
        region.calls.push(r.u32());
        break;
      case 0x11: case 0x13:
        r.u32();
        r.u32();
        scan.indirect = true;
        break;
      case 0x14: case 0x15:
        r.u32();
        scan.indirect = true;
        break;
      case 0x1c: {
        const n = r.u32();
        for (let i = 0; i < n; i++) r.valType();
        break;
      }
      case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26: case 0xd2:
        r.u32();
        break;
      case 0x3f:
        r.u32();
        break;
      case 0x40:
        r.u32();
        scan.grows.push(at);
        break;
      case 0x41: r.skipLeb(32); break;
      case 0x42: r.skipLeb(64); break;
      case 0x43: r.skip(4); break;
      case 0x44: r.skip(8); break;
      case 0xd0: r.heapType(); break;
      case 0xfc:
        if (misc(r, at)) scan.bulk.push(at);
        break;
      case 0xfd: simd(r, at); break;
      default:
        r.fail(`unsupported instruction 0x${op.toString(16)} (meltemi meters MVP, sign extension, saturating conversions, bulk memory, reference types, tail calls and SIMD)`, at);
    }
  }
  if (depth !== 0) r.fail('function body does not end');
  return scan;
}
