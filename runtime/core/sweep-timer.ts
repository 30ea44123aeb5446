// Coarse deadlines for things that are many and short-lived (requests): no setTimeout each. Items
// carry their own due time; one interval sweeps the list every tick, fires what is due and drops
// what was cleared. A request that finishes sets its due time to Infinity and is gone from the
// list at the next sweep, so the list holds the live items plus one tick's worth of finished ones
// — never a timeout's worth (undici's fast timers work the same way).

export interface Timed {
  /** When the item is due (performance.now() ms); Infinity: no deadline, drop it. */
  timerDue: number;
  /** Whether the item is in a sweep list (an item is in at most one, once). */
  inTimer: boolean;
}

export class SweepTimer<T extends Timed> {
  private items: T[] = [];
  private interval: NodeJS.Timeout | undefined;

  /** `fire` is called once the item's due time passed; it may set a new due time (kept) or Infinity. */
  constructor(readonly tickMs: number, private readonly fire: (item: T, now: number) => void) {}

  /** Makes sure `item` is swept; its `timerDue` may change freely while it is. */
  track(item: T): void {
    if (item.inTimer) return;
    item.inTimer = true;
    this.items.push(item);
    if (this.interval === undefined) {
      this.interval = setInterval(() => this.sweep(performance.now()), this.tickMs);
      this.interval.unref(); // pending requests hold their sockets; the sweep alone keeps nothing alive
    }
  }

  get size(): number {
    return this.items.length;
  }

  /** One sweep at `now` (the interval's; tests call it directly). */
  sweep(now: number): void {
    const list = this.items;
    this.items = []; // items fire() tracks anew land here
    for (let i = 0; i < list.length; i++) {
      const item = list[i];
      if (item.timerDue <= now) {
        item.inTimer = false;
        try {
          this.fire(item, now);
        } catch {
          // a failing callback loses its own item only; the sweep goes on
        }
        if (item.timerDue !== Infinity && !item.inTimer) this.track(item);
      } else if (item.timerDue === Infinity) {
        item.inTimer = false;
      } else {
        this.items.push(item);
      }
    }
    if (this.items.length === 0 && this.interval !== undefined) {
      clearInterval(this.interval);
      this.interval = undefined;
    }
  }

  stop(): void {
    clearInterval(this.interval);
    this.interval = undefined;
    for (const item of this.items) item.inTimer = false;
    this.items = [];
  }
}
