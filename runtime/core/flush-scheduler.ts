// Coalesces writes across one turn of the event loop. Reads of every ready socket run in libuv's
// poll phase; setImmediate runs right after it, so one flush sends everything those reads produced
// for a socket in a single write: per-frame writes cost 5x at 16 requests per read (see
// ../shared performance notes), and folding many clients onto one upstream write saves syscalls.

export interface Flushable {
  /** Set while queued; owned by the scheduler. */
  flushQueued: boolean;
  flush(): void;
}

let queue: Flushable[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  const batch = queue;
  queue = [];
  for (let i = 0; i < batch.length; i++) {
    const f = batch[i];
    f.flushQueued = false;
    f.flush();
  }
}

export function scheduleFlush(f: Flushable): void {
  if (f.flushQueued) return;
  f.flushQueued = true;
  queue.push(f);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}
