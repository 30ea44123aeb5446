// Makes the memory cap a property of the module instead of a check after each call: the memory
// section's maximum is rewritten to at most the cap, so a `memory.grow` past it fails inside the
// guest (AssemblyScript aborts, the call traps, the instance is recycled) before the host ever
// commits the pages. A module the host cannot hold to the cap is refused at load.

import { encodeU32 } from './wasm-binary';

const WASM_MAGIC = 0x6d736100; // "\0asm", little-endian
const SECTION_MEMORY = 5;
const PAGE = 65536;
const FLAG_HAS_MAX = 1;
const FLAG_SHARED = 2;
const FLAG_MEMORY64 = 4;

export class MemoryLimitError extends Error {}

export interface MemoryLimits {
  readonly initialPages: number;
  /** Declared maximum before the rewrite (undefined: none). */
  readonly declaredMaxPages: number | undefined;
  readonly maxPages: number;
}

/** Checks the header only: says what is wrong without echoing the file's bytes. */
export function checkWasmHeader(bytes: Uint8Array): void {
  if (bytes.length < 8) throw new MemoryLimitError(`not a WebAssembly module: ${bytes.length} bytes is shorter than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== WASM_MAGIC) throw new MemoryLimitError('not a WebAssembly module: the file does not start with the "\\0asm" magic');
  const version = view.getUint32(4, true);
  if (version !== 1) throw new MemoryLimitError(`WebAssembly binary version ${version} is not supported (expected 1)`);
}

/**
 * Returns a copy of `bytes` whose memory may grow to at most `maxBytes`, and the limits found.
 * Refuses shared or 64-bit memories and an initial size over the cap.
 */
export function limitMemory(bytes: Uint8Array, maxBytes: number): { bytes: Uint8Array; limits: MemoryLimits | undefined } {
  checkWasmHeader(bytes);
  const capPages = Math.floor(maxBytes / PAGE);
  let at = 8;
  while (at < bytes.length) {
    const id = bytes[at];
    const size = readU32(bytes, at + 1);
    const contentStart = size.next;
    const contentEnd = contentStart + size.value;
    if (contentEnd > bytes.length) throw new MemoryLimitError(`not a valid WebAssembly module: section ${id} runs past the end of the module`);
    if (id !== SECTION_MEMORY) {
      at = contentEnd;
      continue;
    }
    const count = readU32(bytes, contentStart);
    if (count.value === 0) return { bytes, limits: undefined };
    if (count.value > 1) throw new MemoryLimitError(`declares ${count.value} memories; plugins may have one`);
    const flags = bytes[count.next];
    if (flags & FLAG_SHARED) throw new MemoryLimitError('declares a shared memory; plugins may not share memory');
    if (flags & FLAG_MEMORY64) throw new MemoryLimitError('declares a 64-bit memory; the host caps 32-bit memories only');
    if (flags & ~FLAG_HAS_MAX) throw new MemoryLimitError(`memory limits flags 0x${flags.toString(16)} are not supported`);
    const initial = readU32(bytes, count.next + 1);
    const declaredMax = flags & FLAG_HAS_MAX ? readU32(bytes, initial.next) : undefined;
    const end = declaredMax ? declaredMax.next : initial.next;
    if (end !== contentEnd) throw new MemoryLimitError('memory section has trailing bytes');
    if (initial.value > capPages) {
      throw new MemoryLimitError(`declares an initial memory of ${initial.value * PAGE} bytes, over the ${maxBytes}-byte cap (plugins.max_memory)`);
    }
    const maxPages = Math.min(declaredMax?.value ?? Number.MAX_SAFE_INTEGER, capPages);
    const content = [...encodeU32(1), FLAG_HAS_MAX, ...encodeU32(initial.value), ...encodeU32(maxPages)];
    const header = [SECTION_MEMORY, ...encodeU32(content.length)];
    const out = new Uint8Array(bytes.length - (contentEnd - at) + header.length + content.length);
    out.set(bytes.subarray(0, at), 0);
    out.set(header, at);
    out.set(content, at + header.length);
    out.set(bytes.subarray(contentEnd), at + header.length + content.length);
    return { bytes: out, limits: { initialPages: initial.value, declaredMaxPages: declaredMax?.value, maxPages } };
  }
  return { bytes, limits: undefined };
}

function readU32(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    if (at + i >= bytes.length) throw new MemoryLimitError('not a valid WebAssembly module: truncated LEB128 number');
    const b = bytes[at + i];
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) {
      if (value > 0xffff_ffff) throw new MemoryLimitError('LEB128 number over 32 bits');
      return { value, next: at + i + 1 };
    }
    shift += 7;
  }
  throw new MemoryLimitError('LEB128 number longer than 5 bytes');
}
