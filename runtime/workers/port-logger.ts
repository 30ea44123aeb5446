// A worker thread's logger: lines go to the primary, which writes them with the worker's index
// (one writer, one format, and a test's logger sees every thread).

import { LOG_LEVELS, type Logger, type LogLevel } from '../core/logger';
import type { FromWorker } from './worker-protocol';

export class PortLogger implements Logger {
  private readonly threshold: number;

  constructor(private readonly send: (m: FromWorker) => void, level: LogLevel, private readonly bound: Record<string, unknown> = {}) {
    this.threshold = LOG_LEVELS.indexOf(level);
  }

  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.threshold;
  }

  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    try {
      this.send({ type: 'log', level, message, fields: { ...this.bound, ...fields } });
    } catch {
      // A field that cannot be cloned (a function, a socket): the line goes without its fields.
      this.send({ type: 'log', level, message, fields: { ...this.bound } });
    }
  }

  child(fields: Record<string, unknown>): Logger {
    return new PortLogger(this.send, LOG_LEVELS[this.threshold], { ...this.bound, ...fields });
  }
}
