// A test harness for filter authors: loads a filter .wasm the way the proxy does (every loader
// rule, limits, canary, self-test), configures it as a listener's `filters:` entry would, and
// runs requests given as metadata pairs through it. Timers the filter sets are recorded, not
// run: fire them with `fireTimer`.
//
//   const f = await FilterHarness.load('build/plugins/local-ratelimit.wasm', { tokenBucket: { … } });
//   f.request([['method', 'get']]);   // { action: 'continue', mutations: [] }

import { ConsoleLogger, Logger } from '../../runtime/core/logger';
import { decodeMutation, MutationEntry } from '../../runtime/codec/mutation';
import { FilterInstance, FilterResult } from '../../runtime/filter/filter-instance';
import { encodeRecord, pairsSource } from '../../runtime/filter/filter-record';
import { acceptPlugin } from '../../runtime/plugin/plugin-accept';
import type { PluginDescriptor } from '../../runtime/plugin/plugin-descriptor';
import { FilterAction, MessageType } from '../../runtime/wasm/abi';
import type { PluginHost } from '../../runtime/wasm/host-imports';

export { ErrorKind } from '../../runtime/wasm/abi';

const LIMITS = { maxFileBytes: 32 * 1024 ** 2, maxMemoryBytes: 512 * 1024 ** 2, fuelPerCall: 2_000_000_000 };
const ACTIONS = ['continue', 'pause', 'local_reply', 'abort'] as const;

export interface HarnessFilterResult {
  readonly action: (typeof ACTIONS)[number];
  readonly mutations: MutationEntry[];
  readonly replyKind?: number;
  readonly replyMessage?: string;
}

export class FilterHarness {
  /** Timers the filter set and that have not fired: request number, delay, timer id. */
  readonly timers: Array<{ req: number; delayMs: number; id: number }> = [];
  private nextReq = 1;
  private nextTimer = 1;
  private readonly instance: FilterInstance;

  private constructor(module: WebAssembly.Module, file: string, logger: Logger) {
    const host: PluginHost = {
      setTimer: (_root, req, delayMs) => {
        const id = this.nextTimer++;
        this.timers.push({ req, delayMs, id });
        return id;
      },
      defineMetric: () => 0,
      recordMetric: () => {},
    };
    this.instance = new FilterInstance(module, file, logger, LIMITS.maxMemoryBytes, LIMITS.fuelPerCall, host);
  }

  /** Loads and configures a filter; rejects with the filter's reason when it refuses `config`. */
  static async load(file: string, config: Record<string, unknown> = {}, opts: { logger?: Logger } = {}): Promise<FilterHarness> {
    const accepted = await acceptPlugin(file, LIMITS);
    if (accepted.unchanged) throw new Error('unreachable: no known build to compare with');
    if (accepted.descriptor.kind !== 'filter') throw new Error(`${file} is a ${accepted.descriptor.kind}, not a filter`);
    const h = new FilterHarness(accepted.module, file, opts.logger ?? new ConsoleLogger('warn'));
    const refused = h.instance.rootNew(1, Buffer.from(JSON.stringify(config), 'utf8'));
    if (refused !== undefined) throw new Error(`the filter refused its config: ${refused}`);
    return h;
  }

  get descriptor(): PluginDescriptor {
    return this.instance.descriptor;
  }

  /** Runs one request with these metadata pairs through on_request; `id` is its number (for timers). */
  request(pairs: ReadonlyArray<readonly [string, string]>, id = this.nextReq++): HarnessFilterResult & { id: number } {
    return { id, ...result(this.instance.onRequest(1, id, encodeRecord(pairsSource(pairs)))) };
  }

  /** Runs the response of request `id` (an error response with `isError`) through on_response. */
  response(id: number, pairs: ReadonlyArray<readonly [string, string]> = [], isError = false): HarnessFilterResult {
    return result(this.instance.onResponse(1, id, encodeRecord(pairsSource(pairs, MessageType.RESPONSE, isError ? 1 : 0))));
  }

  /** Fires the oldest pending timer (as the proxy would after its delay) and returns the decision. */
  fireTimer(): HarnessFilterResult & { req: number } {
    const t = this.timers.shift();
    if (!t) throw new Error('no timer is pending');
    return { req: t.req, ...result(this.instance.onTimer(1, t.req, t.id)) };
  }

  /** Tells the filter request `id` is over. */
  done(id: number): void {
    this.instance.onDone(1, id);
  }
}

function result(r: FilterResult): HarnessFilterResult {
  const action = ACTIONS[r.action];
  if (r.action === FilterAction.LOCAL_REPLY) return { action, mutations: [], replyKind: r.replyKind, replyMessage: r.replyMessage };
  return { action, mutations: r.mutation ? decodeMutation(r.mutation) : [] };
}
