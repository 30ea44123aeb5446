// Errors with stable `code`s, so callers and tests branch on codes rather than messages.

export type MeltemiErrorCode =
  | 'MELTEMI_CONFIG_INVALID'
  | 'MELTEMI_PLUGIN_INVALID'
  | 'MELTEMI_PLUGIN_UNSUPPORTED'
  | 'MELTEMI_PLUGIN_NOT_FOUND'
  | 'MELTEMI_PLUGIN_TRAP'
  | 'MELTEMI_ABI_VIOLATION'
  | 'MELTEMI_CODEC_ERROR'
  | 'MELTEMI_LISTEN_FAILED'
  | 'MELTEMI_FILE_REJECTED'
  | 'MELTEMI_PLUGIN_TIMEOUT'
  | 'MELTEMI_RESOURCE_INVALID'
  | 'MELTEMI_CAPTURE_UNAVAILABLE'
  | 'MELTEMI_CERTIFICATE_MISSING'
  | 'MELTEMI_CERTIFICATE_INVALID'
  | 'MELTEMI_CERTIFICATE_EXPIRED';

export class MeltemiError extends Error {
  readonly code: MeltemiErrorCode;

  constructor(code: MeltemiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MeltemiError';
    this.code = code;
  }
}

export class ConfigError extends MeltemiError {
  /** Dotted path of the offending field, e.g. `listeners[0].port`. */
  readonly field: string;
  /** This problem alone: `field: reason`. */
  readonly line: string;
  /** Every problem found, this one first (`message` has their lines). */
  readonly all: readonly ConfigError[];

  constructor(field: string, reason: string, more: readonly ConfigError[] = []) {
    const line = `${field}: ${reason}`;
    super('MELTEMI_CONFIG_INVALID', [line, ...more.map((e) => e.line)].join('\n'));
    this.name = 'ConfigError';
    this.field = field;
    this.line = line;
    this.all = [this, ...more];
  }

  /** One error carrying all of `errors` (which must not be empty). */
  static of(errors: readonly ConfigError[]): ConfigError {
    if (errors.length === 1) return errors[0];
    const [first, ...rest] = errors;
    return new ConfigError(first.field, first.line.slice(first.field.length + 2), rest);
  }
}

export class PluginError extends MeltemiError {
  /** The plugin file the error is about. */
  readonly file: string;
  /** sha256 of the file's bytes, when they were read: a rejected build is not retried until it changes. */
  sha256: string | undefined;

  constructor(code: MeltemiErrorCode, file: string, message: string, options?: { cause?: unknown; sha256?: string }) {
    super(code, `${file}: ${message}`, options);
    this.name = 'PluginError';
    this.file = file;
    this.sha256 = options?.sha256;
  }
}

export function isMeltemiError(err: unknown, code?: MeltemiErrorCode): err is MeltemiError {
  return err instanceof MeltemiError && (code === undefined || err.code === code);
}
