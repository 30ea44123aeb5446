// An array-backed FIFO with O(1) shift (Array.prototype.shift is O(n) for large queues).
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Calls `fn` on every item, oldest first, without removing them. */
  forEach(fn: (item: T) => void): void {
    const items = this.items;
    for (let i = this.head; i < items.length; i++) fn(items[i] as T);
  }

  /** Removes and returns every item. */
  drain(): T[] {
    const all = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return all;
  }
}
