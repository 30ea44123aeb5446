// Access logs: a compiled format, an optional filter, and a sink per path. Lines are copied into
// 64 KiB chunks and written in one writev every 100 ms or chunk, never one write per request; a
// sink that cannot keep up (a full disk, a blocked pipe) drops lines past 4 MiB waiting,
// counting them, rather than holding the proxy's memory hostage.

import { closeSync, constants, fstatSync, openSync, writev, writevSync } from 'node:fs';
import type { AccessLogConfig } from '../config/types';
import { ConfigError } from '../core/errors';
import { compileJson, compileTextWriter, type LineWriter } from './access-log-format';
import { LineOut } from './line-out';
import type { RequestRecord } from './request-record';

const FLUSH_MS = 100;
const FLUSH_BYTES = 64 * 1024;
const MAX_PENDING = 4 * 1024 * 1024;
/** A chunk with less room than this after a line is sealed (most lines are far shorter). */
const MIN_ROOM = 4096;

export class AccessLogSink {
  private static readonly open = new Map<string, AccessLogSink>();
  /** The chunk lines are copied into, and how much of it is used. */
  private current: Buffer = Buffer.allocUnsafe(FLUSH_BYTES);
  private used = 0;
  /** Filled chunks waiting to be written, oldest first, and their bytes. */
  private queue: Buffer[] = [];
  private queued = 0;
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

  private readonly out = new LineOut(this.current, 0, (out, need) => this.grow(out, need));

  /** Writes the line `writer` makes of `r` straight into the current chunk. */
  writeLine<T>(writer: (r: T, out: LineOut) => void, r: T): void {
    if (this.closed || this.queued + this.used >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    const out = this.out;
    out.buf = this.current;
    out.pos = out.start = this.used;
    try {
      writer(r, out);
    } catch (err) {
      // A line that could not be made is left out whole (after a move to a larger chunk, what
      // came before it is queued already: `start` is where the chunk resumes).
      this.current = out.buf;
      this.used = out.start;
      this.errors++;
      this.lastError = (err as Error).message;
      return;
    }
    this.current = out.buf;
    this.used = out.pos;
    if (this.current.length - this.used < MIN_ROOM) this.seal();
    if (this.queue.length > 0) this.flush();
    else this.schedule(FLUSH_MS);
  }

  /** The line being written does not fit: what came before it is queued, it moves to a larger chunk. */
  private grow(out: LineOut, need: number): void {
    const partial = out.pos - out.start;
    const next = Buffer.allocUnsafe(Math.max(FLUSH_BYTES, (partial + need) * 2));
    out.buf.copy(next, 0, out.start, out.pos);
    if (out.start > 0) this.enqueue(out.buf.subarray(0, out.start));
    out.buf = next;
    out.pos = partial;
    out.start = 0;
  }

  private enqueue(chunk: Buffer): void {
    this.queue.push(chunk);
    this.queued += chunk.length;
  }

  /** The current chunk joins the queue; a fresh one takes lines. */
  private seal(): void {
    if (this.used === 0) return;
    this.enqueue(this.current.subarray(0, this.used));
    this.current = Buffer.allocUnsafe(FLUSH_BYTES);
    this.used = 0;
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.seal();
      this.flush();
    }, ms);
    this.timer.unref();
  }

  /** Writes every queued chunk in one writev; one write at a time, in order. */
  private flush(): void {
    if (this.writing || this.fdClosed) return;
    if (this.queue.length === 0) {
      if (this.closed) this.closeFd();
      return;
    }
    const chunks = this.queue;
    const bytes = this.queued;
    this.queue = [];
    this.queued = 0;
    this.writing = true;
    writev(this.fd, chunks, (err, written) => {
      this.writing = false;
      if (err && (err.code === 'EAGAIN' || err.code === 'EWOULDBLOCK')) {
        // stdout or stderr on a full non-blocking pipe: keep the lines, try again shortly.
        this.requeue(chunks, 0);
        this.shed();
        this.schedule(10);
        return;
      }
      if (err) {
        this.errors++;
        this.lastError = err.message;
      } else if (written < bytes) {
        this.requeue(chunks, written);
      }
      if (this.queue.length > 0 && (this.queued >= FLUSH_BYTES || this.closed)) this.flush();
      else if (this.closed) this.closeFd();
      else if (this.queue.length > 0) this.schedule(FLUSH_MS);
    });
  }

  /** Puts back what of `chunks` was not written (past `written` bytes) before what queued since. */
  private requeue(chunks: Buffer[], written: number): void {
    const rest: Buffer[] = [];
    for (const c of chunks) {
      if (written >= c.length) {
        written -= c.length;
        continue;
      }
      rest.push(written > 0 ? c.subarray(written) : c);
      written = 0;
    }
    this.queue = [...rest, ...this.queue];
    this.queued = this.queue.reduce((n, c) => n + c.length, 0);
  }

  /** Past the cap, the oldest chunks go (whole lines: chunks hold whole lines), counted. */
  private shed(): void {
    while (this.queued + this.used > MAX_PENDING && this.queue.length > 0) {
      const c = this.queue.shift()!;
      this.queued -= c.length;
      let lines = 0;
      for (let i = c.indexOf(10); i >= 0; i = c.indexOf(10, i + 1)) lines++;
      this.dropped += lines;
    }
  }

  /** The last log using it is gone: what is waiting is written, then the file closes. */
  release(): boolean {
    if (--this.users > 0) return false;
    this.closed = true;
    AccessLogSink.open.delete(this.path);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.seal();
    if (!this.writing && this.queue.length > 0) {
      // Synchronously: at stop, the process may end right after.
      try {
        const written = writevSync(this.fd, this.queue);
        this.requeue(this.queue.splice(0), written);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
          this.errors++;
          this.queue = [];
          this.queued = 0;
        }
      }
    }
    this.flush(); // closes the file once nothing is waiting or being written
    return true;
  }

  private closeFd(): void {
    if (!this.fdClosed && this.owned) {
      this.fdClosed = true;
      closeSync(this.fd);
    }
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private readonly drainWaiters: Array<() => void> = [];

  /** Resolves once a released sink has written what it held (or given up on it) and closed. */
  drained(): Promise<void> {
    if (!this.closed) return Promise.reject(new Error('the sink is still in use'));
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
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
  private readonly writer: LineWriter;
  private readonly sink: AccessLogSink;

  constructor(readonly config: AccessLogConfig) {
    if (config.format.kind === 'json') {
      const json = compileJson(config.format.fields, `${config.field}.json_format`);
      this.writer = (r, out) => out.bytes(json(r));
    } else {
      this.writer = compileTextWriter(config.format.text, `${config.field}.format`);
    }
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
    if (this.accepts(r)) this.sink.writeLine(this.writer, r);
  }

  /** Releases the sink (once, however often it is called); resolves when this was its last log and it has written everything. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return this.sink.release() ? this.sink.drained() : Promise.resolve();
  }
}
