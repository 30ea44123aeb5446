// One LDS update, from decoded Listener resources to the listener manager: MetaProtocol listeners
// are decoded (errors name the listener and the field of the Listener), other listeners are
// passed over, and the manager applies the rest. Returns the NACK reason, or undefined to ACK.

import { ConfigError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { DesiredListener, ListenerManager } from '../proxy/listener-manager';
import { decodeListener, MAX_NAME_LENGTH } from './listener-decode';

/** A NACK reason longer than this is cut (it travels in one gRPC message, and into logs). */
const MAX_REASON = 8192;

type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export class LdsUpdater {
  /** Notes and passed-over listeners already logged (an update repeats them all). */
  private logged = new Set<string>();

  /** `gate`: updates wait for it (the YAML's listeners are bound first, so LDS cannot take their ports). */
  constructor(private readonly manager: ListenerManager, private readonly logger: Logger, private readonly gate: Promise<unknown> = Promise.resolve()) {}

  async apply(listeners: readonly Plain[]): Promise<string | undefined> {
    await this.gate;
    const desired: DesiredListener[] = [];
    const kept = new Set<string>();
    const errors: string[] = [];
    /** Line -> level: listeners that are simply not MetaProtocol ones (Istio's HTTP listeners) are routine. */
    const lines = new Map<string, 'debug' | 'warn'>();
    listeners.forEach((l, i) => {
      const named = typeof l.name === 'string' && l.name !== '' && l.name.length <= MAX_NAME_LENGTH;
      const where = named ? `listener "${l.name}"` : `resources[${i}]`;
      try {
        const decoded = decodeListener(l);
        if (decoded.kind === 'passed-over') {
          lines.set(`LDS: ${where} passed over: ${decoded.reason}`, decoded.routine ? 'debug' : 'warn');
          return;
        }
        for (const n of decoded.notes) lines.set(`LDS: ${where}: ${n}`, 'warn');
        desired.push({ config: decoded.config, protocols: decoded.protocols, where });
      } catch (err) {
        if (typeof l.name === 'string') kept.add(l.name);
        errors.push(err instanceof ConfigError ? `${where}: ${err.message}` : `${where}: cannot be read: ${(err as Error).message}`);
      }
    });
    for (const [line, level] of lines) if (!this.logged.has(line)) this.logger.log(level, line);
    this.logged = new Set(lines.keys());
    errors.push(...await this.manager.applyDynamic(desired, kept));
    if (errors.length === 0) return undefined;
    return reason(errors);
  }
}

/** The NACK reason: every error, cut to MAX_REASON with a count of what was left out. */
function reason(errors: readonly string[]): string {
  const head = errors.length === 1 ? '' : `${errors.length} listeners not applied: `;
  let text = head;
  for (let i = 0; i < errors.length; i++) {
    const next = (i === 0 ? '' : '; ') + errors[i];
    if (text.length + next.length > MAX_REASON) return `${text.slice(0, MAX_REASON)} … (${errors.length - i} more not shown)`;
    text += next;
  }
  return text;
}
