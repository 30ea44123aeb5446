// Promises waiting for one condition (a listener with no connection left, every worker drained),
// all resolved together when it comes to hold.

export class Waiters {
  private pending: Array<() => void> = [];

  /** Resolves at once when `holds`, else at the next release(). */
  wait(holds: boolean): Promise<void> {
    if (holds) return Promise.resolve();
    return new Promise((resolve) => this.pending.push(resolve));
  }

  /** The condition holds: every waiter resolves. */
  release(): void {
    for (const resolve of this.pending.splice(0)) resolve();
  }
}
