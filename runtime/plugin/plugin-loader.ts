// Compiles a plugin file once and checks it against ABI v1 before anything runs it: first the
// module's declared imports and exports (no instantiation), then a canary instance that runs
// _initialize and meltemi_info. Errors name the file and the offending item (ABI.md §1).

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PluginError } from '../core/errors';
import type { Logger } from '../core/logger';
import { ABI_MARKER, CODEC_EXPORTS } from './abi';
import { CodecInstance } from './codec-instance';
import type { PluginDescriptor } from './plugin-descriptor';

export interface CompiledPlugin {
  readonly file: string;
  readonly sha256: string;
  readonly module: WebAssembly.Module;
  readonly descriptor: PluginDescriptor;
  readonly loadedAt: Date;
}

const ALLOWED_IMPORTS = new Set(['meltemi.log', 'env.abort']);
const OTHER_MARKER = /^meltemi_abi_v(\d+)$/;

export async function loadPluginFile(file: string, logger: Logger): Promise<CompiledPlugin> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new PluginError('MELTEMI_PLUGIN_NOT_FOUND', file, `cannot read: ${(err as Error).message}`, { cause: err });
  }
  return compilePlugin(file, bytes, logger);
}

export function compilePlugin(file: string, bytes: Uint8Array, logger: Logger): CompiledPlugin {
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(bytes);
  } catch (err) {
    throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `not a valid WebAssembly module: ${(err as Error).message}`, { cause: err });
  }
  checkDeclarations(file, module);
  const canary = new CodecInstance(module, file, logger);
  const descriptor = canary.descriptor;
  if (descriptor.kind === 'filter') {
    throw new PluginError('MELTEMI_PLUGIN_UNSUPPORTED', file, 'filter plugins are declared by ABI 1.0 but this host does not run them yet');
  }
  checkCodecExports(file, module, canary);
  return {
    file,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    module,
    descriptor,
    loadedAt: new Date(),
  };
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
      throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `unknown import "${name}" (${imp.kind}); ABI v1 provides only ${[...ALLOWED_IMPORTS].join(', ')}`);
    }
  }
}

function checkCodecExports(file: string, module: WebAssembly.Module, instance: CodecInstance): void {
  const declared = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind] as const));
  for (const [name, arity] of CODEC_EXPORTS) {
    if (declared.get(name) !== 'function') throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `missing export "${name}" required for a codec`);
    const actual = instance.exportArity(name);
    if (actual !== arity) throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `export "${name}" takes ${actual} parameters; ABI v1 says ${arity}`);
  }
}
