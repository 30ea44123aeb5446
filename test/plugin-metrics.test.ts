// Metrics defined by plugins are untrusted input: names and labels are checked and every limit
// holds before anything is stored (a label value can come from request bytes).

import assert from 'node:assert/strict';
import { PluginMetrics } from '../runtime/filter/plugin-metrics';
import { MetricKind } from '../runtime/wasm/abi';

describe('plugin metrics', () => {
  const refused: Array<[string, number, string, string[]]> = [
    ['an unknown kind', 7, 'ok', []],
    ['a name with a dash', MetricKind.COUNTER, 'bad-name', []],
    ['a name over 64 characters', MetricKind.COUNTER, 'x'.repeat(65), []],
    ['a label named le', MetricKind.HISTOGRAM, 'ok', ['le']],
    ['nine labels', MetricKind.COUNTER, 'ok', ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']],
  ];
  for (const [what, kind, name, labels] of refused) {
    it(`refuses ${what}`, () => assert.equal(new PluginMetrics().define('p', kind, name, labels), 0));
  }

  it('a repeated definition is the same metric; a conflicting one is refused', () => {
    const m = new PluginMetrics();
    const id = m.define('my-filter', MetricKind.COUNTER, 'hits_total', ['outcome']);
    assert.ok(id > 0);
    assert.equal(m.define('my-filter', MetricKind.COUNTER, 'hits_total', ['outcome']), id);
    assert.equal(m.define('my-filter', MetricKind.GAUGE, 'hits_total', ['outcome']), 0);
    assert.equal(m.all()[0].fullName, 'meltemi_plugin_metric_my_filter_hits_total');
  });

  it('series stop at 1000 label sets, long label values are dropped, counters only grow', () => {
    const m = new PluginMetrics();
    const id = m.define('p', MetricKind.COUNTER, 'c', ['key']);
    for (let i = 0; i < 1500; i++) m.record(id, [`k${i}`], 1);
    m.record(id, ['x'.repeat(129)], 1);
    m.record(id, ['k0'], -5);
    const metric = m.all()[0];
    assert.equal(metric.series.size, 1000);
    assert.equal(metric.dropped, 500);
    assert.deepEqual(metric.series.get('k0'), [1]);
  });

  it('two plugins whose names map to one prefix cannot write into each other\'s metric', () => {
    const m = new PluginMetrics();
    assert.ok(m.define('a.b', MetricKind.COUNTER, 'x', []) > 0);
    assert.equal(m.define('a_b', MetricKind.COUNTER, 'x', []), 0);
  });

  it('a registration the admin refuses (a clash) leaves the plugin without the metric', () => {
    const m = new PluginMetrics();
    m.onDefine = () => { throw new Error('already registered'); };
    assert.equal(m.define('p', MetricKind.COUNTER, 'x', []), 0);
    assert.deepEqual(m.all(), []);
  });

  it('a plugin defines at most 64 metrics', () => {
    const m = new PluginMetrics();
    const ids = Array.from({ length: 70 }, (_, i) => m.define('p', MetricKind.GAUGE, `g${i}`, []));
    assert.equal(ids.filter((id) => id > 0).length, 64);
  });

  it('a histogram counts each value in its bucket and keeps the sum', () => {
    const m = new PluginMetrics();
    const id = m.define('p', MetricKind.HISTOGRAM, 'latency_us', []);
    for (const v of [3, 3000, 2_000_000]) m.record(id, [], v);
    const s = m.all()[0].series.get('')!;
    const nonZero = s.slice(0, -1).map((c, i) => [i, c]).filter(([, c]) => c > 0);
    assert.deepEqual(nonZero, [[2, 1], [11, 1], [17, 1]], 'buckets le=5, le=5000, +Inf');
    assert.equal(s.at(-1), 2_003_003);
  });
});
