// A small leveled logger writing one line per event to stderr. Plugins log through it too (tagged
// with the plugin name), so the level also gates guest logging.

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

const ORDER: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, silent: 5 };

export interface Logger {
  enabled(level: LogLevel): boolean;
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export class ConsoleLogger implements Logger {
  private readonly threshold: number;

  constructor(level: LogLevel = 'info', private readonly bound: Record<string, unknown> = {}) {
    this.threshold = ORDER[level];
  }

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= this.threshold;
  }

  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    const all = { ...this.bound, ...fields };
    const extra = Object.keys(all).length > 0 ? ' ' + JSON.stringify(all) : '';
    process.stderr.write(`${new Date().toISOString()} ${level} ${message}${extra}\n`);
  }

  child(fields: Record<string, unknown>): Logger {
    return new ConsoleLogger(levelOf(this.threshold), { ...this.bound, ...fields });
  }
}

function levelOf(n: number): LogLevel {
  return (Object.keys(ORDER) as LogLevel[]).find((k) => ORDER[k] === n) ?? 'info';
}

export const LOG_LEVELS: readonly LogLevel[] = Object.keys(ORDER) as LogLevel[];
