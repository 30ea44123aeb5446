// Connection counts every worker thread reads (a SharedArrayBuffer), so a listener's
// max_connections and overload.max_downstream_connections cap the process, as in Envoy, rather
// than each worker. Each worker writes its own row: a worker that dies cannot take off its
// connections, so the primary clears its row before the replacement starts.

export class SharedConnectionCounts {
  private readonly counts: Int32Array;
  private readonly slots: ReadonlyMap<string, number>;
  private readonly width: number;
  private readonly rows: number;

  /** Per row (one per worker): slot 0 counts every listener's connections, then one slot per name of `listeners`. */
  constructor(readonly buffer: SharedArrayBuffer, readonly listeners: readonly string[], private readonly row = 0) {
    this.counts = new Int32Array(buffer);
    this.width = listeners.length + 1;
    this.rows = this.counts.length / this.width;
    this.slots = new Map(listeners.map((name, i) => [name, i + 1]));
  }

  static create(listeners: readonly string[], workers: number): SharedConnectionCounts {
    return new SharedConnectionCounts(new SharedArrayBuffer(4 * workers * (listeners.length + 1)), listeners);
  }

  /** The same counts, written as worker `row`. */
  forWorker(row: number): SharedConnectionCounts {
    return new SharedConnectionCounts(this.buffer, this.listeners, row);
  }

  private sum(slot: number): number {
    let n = 0;
    for (let r = 0; r < this.rows; r++) n += Atomics.load(this.counts, r * this.width + slot);
    return n;
  }

  /** Counts a new connection on `listener` unless a cap is reached; says which one was. */
  tryAdmit(listener: string, listenerMax: number, globalMax: number): 'global_limit' | 'listener_limit' | undefined {
    const own = this.row * this.width;
    const slot = this.slots.get(listener);
    // Counted first, then checked, and taken back when over: two workers admitting at once
    // cannot both take the last place (both may refuse it, which errs on the safe side).
    Atomics.add(this.counts, own, 1);
    if (this.sum(0) > globalMax) {
      Atomics.sub(this.counts, own, 1);
      return 'global_limit';
    }
    if (slot === undefined) return undefined;
    Atomics.add(this.counts, own + slot, 1);
    if (this.sum(slot) > listenerMax) {
      Atomics.sub(this.counts, own + slot, 1);
      Atomics.sub(this.counts, own, 1);
      return 'listener_limit';
    }
    return undefined;
  }

  release(listener: string): void {
    const own = this.row * this.width;
    const slot = this.slots.get(listener);
    Atomics.sub(this.counts, own, 1);
    if (slot !== undefined) Atomics.sub(this.counts, own + slot, 1);
  }

  /** Forgets worker `row`'s connections (it died: they are closed). */
  clear(row: number): void {
    for (let s = 0; s < this.width; s++) Atomics.store(this.counts, row * this.width + s, 0);
  }

  get total(): number {
    return this.sum(0);
  }
}
