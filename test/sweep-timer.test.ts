// The coarse deadline sweep requests use instead of a setTimeout each: items fire once due and
// not before, a finished item leaves the list at the next sweep (the list never holds a
// timeout's worth of finished requests), and an item re-armed while firing stays.

import assert from 'node:assert/strict';
import { SweepTimer, Timed } from '../runtime/core/sweep-timer';

class Item implements Timed {
  timerDue = Infinity;
  inTimer = false;
  fired = 0;
  constructor(due: number) { this.timerDue = due; }
}

describe('SweepTimer', () => {
  let timer: SweepTimer<Item>;
  const fired: Item[] = [];
  beforeEach(() => {
    fired.length = 0;
    timer = new SweepTimer<Item>(10_000, (item) => { item.fired++; fired.push(item); item.timerDue = Infinity; });
  });
  afterEach(() => timer.stop());

  it('fires an item once its due time passed, and only then', () => {
    const early = new Item(100);
    const late = new Item(200);
    timer.track(early);
    timer.track(late);
    timer.track(early); // tracked twice: still one entry
    timer.sweep(99);
    assert.deepEqual(fired, []);
    timer.sweep(150);
    assert.deepEqual(fired, [early]);
    timer.sweep(250);
    assert.deepEqual(fired, [early, late]);
    assert.equal(early.fired, 1);
    assert.equal(timer.size, 0);
  });

  it('drops finished items at the next sweep, however far their deadline', () => {
    const items = Array.from({ length: 10_000 }, () => new Item(15_000));
    for (const i of items) timer.track(i);
    assert.equal(timer.size, 10_000);
    for (const i of items) i.timerDue = Infinity; // all answered
    timer.sweep(1);
    assert.equal(timer.size, 0);
    assert.ok(items.every((i) => !i.inTimer));
  });

  it('keeps an item its callback re-arms, and fires it again when due', () => {
    const t = new SweepTimer<Item>(10_000, (item, now) => { item.fired++; item.timerDue = item.fired < 3 ? now + 10 : Infinity; });
    const item = new Item(5);
    t.track(item);
    t.sweep(5);
    t.sweep(10); // not due yet (15)
    t.sweep(15);
    t.sweep(25);
    assert.equal(item.fired, 3);
    assert.equal(t.size, 0);
    t.stop();
  });
});
