// Route matching with Envoy HeaderMatcher semantics over metadata, first match wins, and the
// weighted split.

import assert from 'node:assert/strict';
import type { MetadataMatcherConfig, RouteConfig } from '../runtime/config/types';
import { compileMatcher, RouteTable } from '../runtime/router/route-table';
import { StatsStore } from '../runtime/core/stats';
import type { Metadata } from '../runtime/codec/metadata';

/** Just enough of Metadata for matching: values are latin1 views of UTF-8, as the codec hands them. */
function meta(entries: Record<string, string>): Metadata {
  const latin1 = Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('latin1')]));
  return { get: (k: string) => latin1[k], has: (k: string) => k in latin1 } as unknown as Metadata;
}

const m = (name: string, match: MetadataMatcherConfig['match'], invert = false): MetadataMatcherConfig => ({ name, match, invert });

describe('route table', () => {
  const cases: Array<[MetadataMatcherConfig, Record<string, string>, boolean]> = [
    [m('key', { kind: 'exact', value: 'a' }), { key: 'a' }, true],
    [m('key', { kind: 'exact', value: 'a' }), { key: 'ab' }, false],
    [m('key', { kind: 'prefix', value: 'cache:' }), { key: 'cache:1' }, true],
    [m('key', { kind: 'prefix', value: 'cache:' }), { key: 'user:1' }, false],
    [m('key', { kind: 'suffix', value: ':tmp' }), { key: 'x:tmp' }, true],
    [m('key', { kind: 'contains', value: 'mid' }), { key: 'amidb' }, true],
    [m('key', { kind: 'regex', value: 'user:[0-9]+' }), { key: 'user:12' }, true],
    [m('key', { kind: 'regex', value: 'user:[0-9]+' }), { key: 'user:12x' }, false], // whole value must match
    [m('key', { kind: 'present', value: true }), { key: '' }, true],
    [m('key', { kind: 'present', value: true }), {}, false],
    [m('key', { kind: 'present', value: false }), {}, true],
    [m('key', { kind: 'exact', value: 'a' }, true), { key: 'b' }, true],
    [m('key', { kind: 'exact', value: 'a' }, true), {}, false], // absent fails even inverted
    [m('key', { kind: 'present', value: true }, true), {}, true],
    [m('user', { kind: 'prefix', value: 'Zoë' }), { user: 'Zoë Smith' }, true], // UTF-8 byte-exact
    [m('user', { kind: 'regex', value: 'Zo. .*' }), { user: 'Zoë Smith' }, true], // regex sees text
  ];
  for (const [matcher, entries, expected] of cases) {
    it(`${matcher.invert ? 'not ' : ''}${matcher.match.kind} ${JSON.stringify(matcher.match.value)} on ${JSON.stringify(entries)} → ${expected}`, () => {
      assert.equal(compileMatcher(matcher)(meta(entries)), expected);
    });
  }

  const route = (name: string, metadata: MetadataMatcherConfig[], cluster: string): RouteConfig =>
    ({ name, match: { metadata }, route: { kind: 'cluster', cluster }, requestMutation: [] });

  it('takes the first route whose matchers all hold', () => {
    const table = new RouteTable({ name: 'rc', routes: [
      route('both', [m('command', { kind: 'exact', value: 'GET' }), m('key', { kind: 'prefix', value: 'a' })], 'c1'),
      route('get', [m('command', { kind: 'exact', value: 'GET' })], 'c2'),
      route('rest', [], 'c3'),
    ] }, 'l', new StatsStore());
    assert.equal(table.match(meta({ command: 'GET', key: 'ab' }))!.name, 'both');
    assert.equal(table.match(meta({ command: 'GET', key: 'zz' }))!.name, 'get');
    assert.equal(table.match(meta({ command: 'SET', key: 'ab' }))!.name, 'rest');
  });

  it('has no match without a catch-all', () => {
    const table = new RouteTable({ name: 'rc', routes: [route('get', [m('command', { kind: 'exact', value: 'GET' })], 'c')] }, 'l', new StatsStore());
    assert.equal(table.match(meta({ command: 'SET' })), undefined);
  });

  it('splits weighted clusters in proportion (20/80 over 20 000 draws, ±2 points)', () => {
    const table = new RouteTable({ name: 'rc', routes: [{
      name: 'w', match: { metadata: [] }, requestMutation: [],
      route: { kind: 'weighted_clusters', clusters: [{ name: 'v1', weight: 20 }, { name: 'v2', weight: 80 }, { name: 'off', weight: 0 }] },
    }] }, 'l', new StatsStore());
    const counts: Record<string, number> = {};
    for (let i = 0; i < 20_000; i++) {
      const c = table.routes[0].cluster();
      counts[c] = (counts[c] ?? 0) + 1;
    }
    assert.equal(counts.off, undefined);
    assert.ok(Math.abs(counts.v1 / 20_000 - 0.2) < 0.02, `v1 share ${counts.v1 / 20_000}`);
  });
});
