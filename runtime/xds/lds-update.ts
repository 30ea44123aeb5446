// One LDS update, from decoded Listener resources to the listener manager: MetaProtocol listeners
// are decoded (errors name the listener and the field of the Listener), other listeners are
// passed over, and the manager applies the rest. Returns the NACK reason, or undefined to ACK.

import { ConfigError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { DesiredListener, ListenerManager } from '../proxy/listener-manager';
import { decodeListener } from './listener-decode';

type Plain = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export class LdsUpdater {
  /** Notes and passed-over listeners already logged (an update repeats them all). */
  private logged = new Set<string>();

  constructor(private readonly manager: ListenerManager, private readonly logger: Logger) {}

  async apply(listeners: readonly Plain[]): Promise<string | undefined> {
    const desired: DesiredListener[] = [];
    const kept = new Set<string>();
    const errors: string[] = [];
    const lines = new Set<string>();
    listeners.forEach((l, i) => {
      const where = typeof l.name === 'string' && l.name ? `listener "${l.name}"` : `resources[${i}]`;
      try {
        const decoded = decodeListener(l);
        if (decoded.kind === 'passed-over') {
          lines.add(`LDS: ${where} passed over: ${decoded.reason}`);
          return;
        }
        for (const n of decoded.notes) lines.add(`LDS: ${where}: ${n}`);
        desired.push({ config: decoded.config, protocols: decoded.protocols, where });
      } catch (err) {
        if (typeof l.name === 'string') kept.add(l.name);
        errors.push(err instanceof ConfigError ? `${where}: ${err.message}` : `${where}: cannot be read: ${(err as Error).message}`);
      }
    });
    for (const line of lines) if (!this.logged.has(line)) this.logger.log(line.includes('passed over: no MetaProtocolProxy') ? 'debug' : 'warn', line);
    this.logged = lines;
    errors.push(...await this.manager.applyDynamic(desired, kept));
    if (errors.length === 0) return undefined;
    return errors.length === 1 ? errors[0] : `${errors.length} listeners not applied: ${errors.join('; ')}`;
  }
}
