// A Logger that records lines, for asserting what the host or a plugin logged.
import type { LogLevel, Logger } from '../../runtime/core/logger';

export class CaptureLogger implements Logger {
  readonly lines: Array<{ level: LogLevel; message: string; fields: Record<string, unknown> }> = [];

  enabled(): boolean {
    return true;
  }

  log(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level, message, fields });
  }

  child(): Logger {
    return this;
  }
}
