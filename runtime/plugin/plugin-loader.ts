// Checks a plugin against ABI v1 before anything trusts it: first the module's declared imports
// and exports (no instantiation), then a canary instance that runs _initialize and meltemi_info.
// Errors name the file and the offending item (ABI.md §1).

import { createHash } from 'node:crypto';
import { PluginError } from '../core/errors';
import type { Logger } from '../core/logger';
import { ABI_MARKER, CODEC_EXPORTS, FILTER_EXPORTS, REBIND_EXPORT } from '../wasm/abi';
import { HOST_IMPORTS } from '../wasm/host-imports';
import { WasmInstance } from '../wasm/wasm-instance';
import { parseDescriptor } from './plugin-descriptor';
import type { PluginDescriptor } from './plugin-descriptor';

export interface CompiledPlugin {
  readonly file: string;
  readonly sha256: string;
  readonly module: WebAssembly.Module;
  readonly descriptor: PluginDescriptor;
  readonly loadedAt: Date;
}

const ALLOWED_IMPORTS = new Set(HOST_IMPORTS);
const OTHER_MARKER = /^meltemi_abi_v(\d+)$/;

/**
 * Compiles and checks a plugin on the calling thread, running its code in a canary instance.
 * For trusted contexts only (the SDK harness, fuzzing): the proxy accepts plugins off its event
 * loop, through plugin-compiler.ts.
 */
export function compilePlugin(file: string, bytes: Uint8Array, logger: Logger): CompiledPlugin {
  const module = compileModule(file, bytes);
  const canary = new WasmInstance(module, file, logger);
  return {
    file,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    module,
    descriptor: checkCanary(file, module, canary),
    loadedAt: new Date(),
  };
}

/** Compiles `bytes` and checks the module's declared imports and exports (nothing runs). */
export function compileModule(file: string, bytes: Uint8Array): WebAssembly.Module {
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(bytes);
  } catch (err) {
    // V8's message can quote bytes of the file ("found 72 6f 6f 74"); they are not repeated.
    const message = (err as Error).message.replace(/found(\s+[0-9a-f]{2})+/gi, 'found other bytes');
    throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `not a valid WebAssembly module: ${message}`, { cause: err });
  }
  checkDeclarations(file, module);
  return module;
}

/** The descriptor of a canary instance, once it has every export its kind needs. */
export function checkCanary(file: string, module: WebAssembly.Module, canary: WasmInstance): PluginDescriptor {
  const descriptor = parseDescriptor(file, canary.info);
  if (descriptor.kind === 'filter' && descriptor.abiMinor < 1) {
    throw new PluginError('MELTEMI_PLUGIN_UNSUPPORTED', file, 'filter plugins start at ABI 1.1 (abi_minor 1); ABI 1.0 only declared them');
  }
  checkExports(file, module, canary, descriptor.kind === 'filter' ? FILTER_EXPORTS : CODEC_EXPORTS, descriptor.kind);
  // Optional (ABI 1.2): checked when present, so a wrong one fails at load, not at a client's login.
  const [rebind] = REBIND_EXPORT;
  if (WebAssembly.Module.exports(module).some((e) => e.name === rebind)) checkExports(file, module, canary, [REBIND_EXPORT], descriptor.kind);
  return descriptor;
}

function checkDeclarations(file: string, module: WebAssembly.Module): void {
  const exports = WebAssembly.Module.exports(module);
  const names = new Set(exports.map((e) => e.name));
  if (!names.has(ABI_MARKER)) {
    const other = exports.map((e) => OTHER_MARKER.exec(e.name)).find((m) => m !== null);
    if (other) throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `built for meltemi ABI v${other[1]}; this host supports v1 (export "${ABI_MARKER}")`);
    throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `missing export "${ABI_MARKER}": not a meltemi plugin, or built without the SDK's exports`);
  }
  for (const name of ['meltemi_ctrl', 'meltemi_info']) {
    if (!names.has(name)) throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `missing export "${name}"`);
  }
  const memory = exports.find((e) => e.name === 'memory');
  if (!memory || memory.kind !== 'memory') throw new PluginError('MELTEMI_PLUGIN_INVALID', file, 'missing export "memory"');
  for (const imp of WebAssembly.Module.imports(module)) {
    const name = `${imp.module}.${imp.name}`;
    if (!ALLOWED_IMPORTS.has(name) || imp.kind !== 'function') {
      throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `unknown import "${name}" (${imp.kind}); ABI 1.2 provides only ${[...ALLOWED_IMPORTS].join(', ')}`);
    }
  }
}

function checkExports(file: string, module: WebAssembly.Module, instance: WasmInstance, required: ReadonlyArray<readonly [string, number]>, kind: string): void {
  const declared = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind] as const));
  for (const [name, arity] of required) {
    if (declared.get(name) !== 'function') throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `missing export "${name}" required for a ${kind}`);
    const actual = instance.exportArity(name);
    if (actual !== arity) throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `export "${name}" takes ${actual} parameters; ABI v1 says ${arity}`);
  }
}
