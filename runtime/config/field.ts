// A cursor over untyped YAML/JSON that knows its own path, so every validation error names the
// field it is about (`listeners[0].route_config.routes[2].match.metadata[0].prefix_match`).

import { ConfigError } from '../core/errors';
import { suggest } from '../core/suggest';

export class Field {
  /**
   * `errors`: where `collect` puts the errors of the parts it validates, so one pass reports every
   * problem; without it, the first error throws.
   */
  constructor(readonly path: string, readonly value: unknown, readonly errors?: ConfigError[]) {}

  /** Runs `read`; with an error sink, a ConfigError is recorded and `fallback` returned instead. */
  collect<T>(read: () => T, fallback: T): T {
    if (!this.errors) return read();
    try {
      return read();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const e of err.all) this.errors.push(e.all.length > 1 ? new ConfigError(e.field, e.line.slice(e.field.length + 2)) : e);
      return fallback;
    }
  }

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  fail(message: string): never {
    throw new ConfigError(this.path || '(root)', message);
  }

  child(key: string): Field {
    const obj = this.object();
    return new Field(this.path ? `${this.path}.${key}` : key, obj[key], this.errors);
  }

  object(): Record<string, unknown> {
    if (typeof this.value !== 'object' || this.value === null || Array.isArray(this.value)) this.fail('must be a mapping');
    return this.value as Record<string, unknown>;
  }

  /**
   * Rejects keys other than `allowed` (catches typos such as `prefix_mach`). With an error sink,
   * every unknown key is recorded and reading goes on.
   */
  only(allowed: readonly string[]): this {
    for (const key of Object.keys(this.object())) {
      if (!allowed.includes(key)) {
        const guess = suggest(key, allowed);
        const unknown = new Field(this.path ? `${this.path}.${key}` : key, undefined, this.errors);
        unknown.collect(() => unknown.fail(`unknown field${guess ? ` (did you mean ${guess}?)` : ''} (expected one of: ${allowed.join(', ')})`), undefined);
      }
    }
    return this;
  }

  /** `read` of the child `key`; with an error sink, a failure is recorded and `fallback` returned. */
  get<T>(key: string, read: (f: Field) => T, fallback: T): T {
    const child = this.child(key);
    return child.collect(() => read(child), fallback);
  }

  items(): Field[] {
    if (!Array.isArray(this.value)) this.fail('must be a list');
    return (this.value as unknown[]).map((v, i) => new Field(`${this.path}[${i}]`, v, this.errors));
  }

  string(opts: { nonEmpty?: boolean; pattern?: RegExp; max?: number } = {}): string {
    if (typeof this.value !== 'string') this.fail('must be a string');
    const s = this.value as string;
    if (opts.nonEmpty && s.length === 0) this.fail('must not be empty');
    if (opts.max !== undefined && Buffer.byteLength(s) > opts.max) this.fail(`must be at most ${opts.max} bytes`);
    if (opts.pattern && !opts.pattern.test(s)) this.fail(`must match ${opts.pattern}`);
    return s;
  }

  integer(min: number, max: number): number {
    if (typeof this.value !== 'number' || !Number.isInteger(this.value)) this.fail('must be an integer');
    const n = this.value as number;
    if (n < min || n > max) this.fail(`must be between ${min} and ${max}`);
    return n;
  }

  /** A number (fractions allowed) between `min` and `max`. */
  number(min: number, max: number): number {
    if (typeof this.value !== 'number' || !Number.isFinite(this.value)) this.fail('must be a number');
    const n = this.value as number;
    if (n < min || n > max) this.fail(`must be between ${min} and ${max}`);
    return n;
  }

  boolean(): boolean {
    if (typeof this.value !== 'boolean') this.fail('must be true or false');
    return this.value as boolean;
  }

  oneOf<T extends string>(choices: readonly T[]): T {
    const s = this.string();
    if (!(choices as readonly string[]).includes(s)) this.fail(`must be one of: ${choices.join(', ')}`);
    return s as T;
  }

  /** A duration: a number of milliseconds, or a string such as "250ms", "1s", "1.5s", "2m". */
  durationMs(): number {
    if (typeof this.value === 'number' && this.value >= 0 && Number.isFinite(this.value)) return this.value;
    const m = typeof this.value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(this.value) : null;
    if (!m) this.fail('must be a duration such as "250ms", "1s" or a number of milliseconds');
    const n = Number(m![1]);
    return m![2] === 'ms' ? n : m![2] === 's' ? n * 1000 : n * 60_000;
  }

  /** The value if present, else `fallback` (also, with an error sink, when it is invalid). */
  or<T>(read: (f: Field) => T, fallback: T): T {
    return this.present ? this.collect(() => read(this), fallback) : fallback;
  }
}
