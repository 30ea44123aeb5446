// Exponential back-off with ±20% jitter, reset after a success.
export class Backoff {
  private next: number;

  constructor(private readonly initialMs: number, private readonly maxMs: number, private readonly random: () => number = Math.random) {
    this.next = initialMs;
  }

  /** The delay before the next attempt; doubles each call up to the maximum. */
  delay(): number {
    const base = this.next;
    this.next = Math.min(this.maxMs, this.next * 2);
    return Math.round(base * (0.8 + 0.4 * this.random()));
  }

  reset(): void {
    this.next = this.initialMs;
  }
}
