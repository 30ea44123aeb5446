// Access logs: a compiled format, an optional filter, and a sink per path. Lines are gathered
// and written in one write every 100 ms or 64 KiB, never one write per request; a sink that
// cannot keep up (a full disk, a blocked pipe) drops lines past 4 MiB waiting, counting them,
// rather than holding the proxy's memory hostage.

import { closeSync, constants, fstatSync, openSync, write, writeSync } from 'node:fs';
import type { AccessLogConfig } from '../config/types';
import { ConfigError } from '../core/errors';
import { compileJson, compileText, type LineFormatter } from './access-log-format';
import type { RequestRecord } from './request-record';

const FLUSH_MS = 100;
const FLUSH_BYTES = 64 * 1024;
const MAX_PENDING = 4 * 1024 * 1024;

export class AccessLogSink {
  private static readonly open = new Map<string, AccessLogSink>();
  private pending = '';
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  private users = 0;
  /** No log uses it any more: lines are dropped, the file closes after the last write. */
  private closed = false;
  private fdClosed = false;
  /** Lines lost because the sink had 4 MiB waiting, and writes that failed. */
  dropped = 0;
  errors = 0;
  private lastError: string | undefined;

  private constructor(readonly path: string, private readonly fd: number, private readonly owned: boolean) {}

  /**
   * The sink for `path`, shared by every log writing there (one open file, lines never
   * interleaved). Only regular files (and stdout, stderr): opening a FIFO could block the
   * event loop, and writing to one would hold a thread of libuv's pool while it is full.
   */
  static acquire(path: string): AccessLogSink {
    let sink = AccessLogSink.open.get(path);
    if (!sink) {
      const std = path === '/dev/stdout' ? 1 : path === '/dev/stderr' ? 2 : -1;
      sink = std >= 0 ? new AccessLogSink(path, std, false) : new AccessLogSink(path, openRegularFile(path), true);
      AccessLogSink.open.set(path, sink);
    }
    sink.users++;
    return sink;
  }

  static all(): IterableIterator<AccessLogSink> {
    return AccessLogSink.open.values();
  }

  write(line: string): void {
    if (this.closed || this.pending.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.pending += line;
    if (this.pending.length >= FLUSH_BYTES) this.flush();
    else this.schedule(FLUSH_MS);
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, ms);
    this.timer.unref();
  }

  private flush(): void {
    if (this.writing || this.fdClosed) return;
    if (this.pending === '') {
      if (this.closed) this.closeFd();
      return;
    }
    const data = Buffer.from(this.pending, 'latin1'); // byte strings (access-log-format.ts)
    this.pending = '';
    this.writing = true;
    write(this.fd, data, 0, data.length, null, (err, written) => {
      this.writing = false;
      if (err && (err.code === 'EAGAIN' || err.code === 'EWOULDBLOCK')) {
        // stdout or stderr on a full non-blocking pipe: keep the lines, try again shortly.
        this.pending = data.toString('latin1') + this.pending;
        if (this.pending.length > MAX_PENDING) this.shed();
        this.schedule(10);
        return;
      }
      if (err) {
        this.errors++;
        this.lastError = err.message;
      } else if (written < data.length) {
        this.pending = data.subarray(written).toString('latin1') + this.pending;
      }
      if (this.pending.length >= FLUSH_BYTES || this.closed) this.flush();
      else if (this.pending !== '') this.schedule(FLUSH_MS);
    });
  }

  /** Drops whole lines from the front until under the cap (the newest are kept). */
  private shed(): void {
    let cut = this.pending.length - MAX_PENDING;
    cut = this.pending.indexOf('\n', cut) + 1 || this.pending.length;
    let lines = 0;
    for (let i = this.pending.indexOf('\n'); i >= 0 && i < cut; i = this.pending.indexOf('\n', i + 1)) lines++;
    this.dropped += lines;
    this.pending = this.pending.slice(cut);
  }

  /** The last log using it is gone: what is waiting is written, then the file closes. */
  release(): void {
    if (--this.users > 0) return;
    this.closed = true;
    AccessLogSink.open.delete(this.path);
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.writing && this.pending !== '') {
      // Synchronously: at stop, the process may end right after.
      try {
        writeSync(this.fd, Buffer.from(this.pending, 'latin1'));
        this.pending = '';
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
          this.errors++;
          this.pending = '';
        }
      }
    }
    this.flush(); // closes the file once nothing is waiting or being written
  }

  private closeFd(): void {
    if (this.fdClosed || !this.owned) return;
    this.fdClosed = true;
    closeSync(this.fd);
  }

  get error(): string | undefined {
    return this.lastError;
  }
}

function openRegularFile(path: string): number {
  // O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of blocking the open.
  const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK, 0o640);
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new Error('not a regular file (access logs go to files, /dev/stdout or /dev/stderr)');
  }
  return fd;
}

/** One configured access log: which requests, in which format, to which sink. */
export class AccessLog {
  private readonly format: LineFormatter;
  private readonly sink: AccessLogSink;

  constructor(readonly config: AccessLogConfig) {
    this.format = config.format.kind === 'json' ? compileJson(config.format.fields, `${config.field}.json_format`) : compileText(config.format.text, `${config.field}.format`);
    try {
      this.sink = AccessLogSink.acquire(config.path);
    } catch (err) {
      throw new ConfigError(`${config.field}.path`, `cannot open ${config.path} for appending: ${(err as Error).message}`);
    }
  }

  /** The filter: errors only, at least this long, these response flags, a sample. */
  accepts(r: RequestRecord): boolean {
    const f = this.config.filter;
    if (f.errorsOnly && r.code === 0 && r.flags === '-') return false;
    if (r.durationMs < f.minDurationMs) return false;
    if (f.responseFlags.length > 0 && !f.responseFlags.some((flag) => r.flags.split(',').includes(flag))) return false;
    if (f.samplePercent < 100 && Math.random() * 100 >= f.samplePercent) return false;
    return true;
  }

  private closed = false;

  log(r: RequestRecord): void {
    if (this.accepts(r)) this.sink.write(this.format(r));
  }

  /** Releases the sink (once, however often it is called). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sink.release();
  }
}
