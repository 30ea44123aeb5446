// The whole accept path of one plugin file, meant to run in the compiler worker: read (regular
// file, bounded), check the header, compile and check declarations, add fuel metering, cap the
// memory in the module itself, compile what will run, and run it in a canary through the calls
// every connection makes. Nothing here runs on the proxy's event loop, and the worker can be
// terminated when a step takes too long.

import { createHash } from 'node:crypto';
import { readRegularFile } from '../core/bounded-file';
import { isMeltemiError, PluginError } from '../core/errors';
import type { Logger, LogLevel } from '../core/logger';
import { ErrorKind, MessageType } from '../wasm/abi';
import { WasmInstance } from '../wasm/wasm-instance';
import { FilterInstance } from '../filter/filter-instance';
import { CodecContext, CodecPlugin, ID_NOT_REWRITTEN } from '../codec/codec-plugin';
import { withRequestId } from '../codec/mutation';
import { EMPTY_RECORD } from '../filter/filter-record';
import { meterModule } from '../wasm/fuel-metering';
import { checkCanary, compileModule } from './plugin-loader';
import type { PluginDescriptor } from './plugin-descriptor';
import { limitMemory, MemoryLimitError } from '../wasm/wasm-memory-limit';

export interface AcceptOptions {
  readonly maxFileBytes: number;
  readonly maxMemoryBytes: number;
  /** 0: no metering (the operator's choice; the canary still runs off the event loop). */
  readonly fuelPerCall: number;
  /** sha256 of the generation now serving from this file: equal bytes are not compiled again. */
  readonly knownSha256?: string;
}

export type AcceptResult =
  | { readonly unchanged: true; readonly sha256: string }
  | {
    readonly unchanged: false;
    readonly sha256: string;
    readonly module: WebAssembly.Module;
    readonly descriptor: PluginDescriptor;
    readonly guestLog: readonly GuestLogLine[];
  };

export interface GuestLogLine {
  readonly level: LogLevel;
  readonly message: string;
}

export async function acceptPlugin(file: string, opts: AcceptOptions): Promise<AcceptResult> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(file, opts.maxFileBytes);
  } catch (err) {
    throw new PluginError('MELTEMI_PLUGIN_NOT_FOUND', file, `cannot read: ${(err as Error).message.replace(`${file}: `, '')}`, { cause: err });
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 === opts.knownSha256) return { unchanged: true, sha256 };
  try {
    return await acceptBytes(file, bytes, sha256, opts);
  } catch (err) {
    if (err instanceof PluginError) err.sha256 = sha256;
    throw err;
  }
}

async function acceptBytes(file: string, bytes: Uint8Array, sha256: string, opts: AcceptOptions): Promise<AcceptResult> {
  try {
    limitMemory(bytes, opts.maxMemoryBytes); // header and memory declaration, before any compiling
  } catch (err) {
    if (err instanceof MemoryLimitError) throw new PluginError('MELTEMI_PLUGIN_INVALID', file, err.message);
    throw err;
  }
  // The plugin's own bytes go through every loader rule first, so rejections name its items.
  compileModule(file, bytes);
  let runnable = bytes;
  if (opts.fuelPerCall > 0) {
    try {
      runnable = meterModule(bytes, opts.fuelPerCall);
    } catch (err) {
      throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `cannot add fuel metering: ${(err as Error).message}`, { cause: err });
    }
  }
  const module = compileModule(file, limitMemory(runnable, opts.maxMemoryBytes).bytes);
  const logger = new CollectingLogger();
  const canary = new WasmInstance(module, file, logger, opts.maxMemoryBytes, opts.fuelPerCall);
  const descriptor = checkCanary(file, module, canary);
  if (descriptor.kind === 'codec') selfTest(new CodecPlugin({ file, sha256, module, descriptor, loadedAt: new Date() }, logger, 0, opts.maxMemoryBytes, opts.fuelPerCall));
  else filterSelfTest(file, module, logger, opts);
  return { unchanged: false, sha256, module, descriptor, guestLog: logger.lines };
}

/** A build must survive the calls every connection makes before it replaces a working one. */
function selfTest(plugin: CodecPlugin): void {
  for (const upstream of [false, true]) {
    const ctx = plugin.open(upstream, Buffer.alloc(0));
    try {
      ctx.decode(Buffer.alloc(0), upstream ? 1 : 0);
      ctx.localReply(null, ErrorKind.PROTOCOL_ERROR, 'meltemi self-test');
      if (plugin.descriptor.correlation === 'request_id') probeIdRewrite(ctx, upstream);
    } catch (err) {
      const reason = isMeltemiError(err) ? err.message.replace(`${plugin.compiled.file}: `, '') : String(err);
      throw new PluginError('MELTEMI_PLUGIN_INVALID', plugin.compiled.file, `self-test failed: ${reason}`, { cause: err });
    } finally {
      ctx.close();
    }
  }
}

/**
 * A request-id codec must rewrite ids (the host renumbers every request). The probe asks it to
 * re-encode an empty frame with a new id: refusing (an error status, even a trap) is a fine
 * answer to a frame that is not one, but "unchanged" means encode ignores SET_REQUEST_ID — which
 * the base class's default encode does — and would time out every request of clients sharing an
 * upstream connection. Rejected here, at load, instead.
 */
function probeIdRewrite(ctx: CodecContext, upstream: boolean): void {
  try {
    ctx.encode(Buffer.alloc(0), withRequestId(null, 0x5eed, 0), upstream ? MessageType.RESPONSE : MessageType.REQUEST, upstream, true);
  } catch (err) {
    if (isMeltemiError(err, 'MELTEMI_ABI_VIOLATION') && err.message.includes(ID_NOT_REWRITTEN)) throw err;
  }
}

/**
 * A filter must take the calls every request makes: a root with an empty config (a filter whose
 * config is required may refuse it — that is an answer), and a request with no metadata through
 * on_request, on_response and on_done.
 */
function filterSelfTest(file: string, module: WebAssembly.Module, logger: Logger, opts: AcceptOptions): void {
  const filter = new FilterInstance(module, file, logger, opts.maxMemoryBytes, opts.fuelPerCall);
  try {
    if (filter.rootNew(1, Buffer.alloc(0)) !== undefined) return;
    filter.onRequest(1, 1, EMPTY_RECORD);
    filter.onResponse(1, 1, EMPTY_RECORD);
    filter.onDone(1, 1);
    filter.rootFree(1);
  } catch (err) {
    const reason = isMeltemiError(err) ? err.message.replace(`${file}: `, '') : String(err);
    throw new PluginError('MELTEMI_PLUGIN_INVALID', file, `self-test failed: ${reason}`, { cause: err });
  }
}

const MAX_LOG_LINES = 20;

/** Keeps what the canary logged (a few lines), for the proxy's own log. */
class CollectingLogger implements Logger {
  readonly lines: GuestLogLine[] = [];

  enabled(): boolean {
    return this.lines.length < MAX_LOG_LINES;
  }

  log(level: LogLevel, message: string): void {
    if (this.lines.length < MAX_LOG_LINES) this.lines.push({ level, message: message.slice(0, 1000) });
  }

  child(): Logger {
    return this;
  }
}
