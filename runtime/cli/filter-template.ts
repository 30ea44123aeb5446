// What `meltemi new filter NAME` writes beyond the common project files (plugin-project.ts): a
// working filter that refuses requests by a metadata value from its config, counts what it did
// on /metrics, and its filter-harness test.

import { pascal, PluginSources } from './plugin-project';

const filterSource = (name: string) => `// ${name}: a meltemi filter (ABI 1.1). Replace the logic below with yours.
// Template: refuses requests whose metadata key \`key\` has one of the \`deny\` values, e.g.
//   filters: [ { name: ${name}, config: { key: method, deny: [ drop, purge ] } } ]
import {
  Bytes, ERR_PERMISSION_DENIED, FILTER_CONTINUE, Filter, FilterInfo, FilterRequest, JsonKind, Metric,
  defineCounter, parseJson, registerFilter,
} from "meltemi/sdk/assembly";

// The ABI exports come from the SDK: a filter never writes them itself.
export * from "meltemi/sdk/assembly/filter-exports";

const DENIED: string[] = ["denied"];
const PASSED: string[] = ["passed"];

class ${pascal(name)}Filter extends Filter {
  key: string = "";
  deny: string[] = [];
  outcomes: Metric = new Metric(0);

  // Once per use (a listener's filters: entry): null accepts the config, a string refuses it.
  configure(config: Bytes): string | null {
    const root = parseJson(config);
    if (root === null || root.kind != JsonKind.Object) return "config must be an object with key and deny";
    const key = root.get("key");
    if (key === null || key.kind != JsonKind.String) return "key must be a metadata key, such as method";
    this.key = key.str;
    const deny = root.get("deny");
    if (deny === null || deny.kind != JsonKind.Array) return "deny must be a list of values";
    for (let i = 0; i < deny.items.length; i++) {
      if (deny.items[i].kind != JsonKind.String) return "deny[" + i.toString() + "] must be a string";
      this.deny.push(deny.items[i].str);
    }
    // On /metrics as meltemi_plugin_metric_${name.replace(/[^a-z0-9_]/g, '_')}_requests_total{outcome}.
    this.outcomes = defineCounter("requests_total", ["outcome"]);
    return null;
  }

  // Every request of the listener, before the router.
  onRequest(req: FilterRequest): i32 {
    const value = req.getBytes(this.key); // a view of the request's metadata: no copy
    if (value !== null) {
      for (let i = 0; i < this.deny.length; i++) {
        const n = String.UTF8.byteLength(this.deny[i]);
        if (value.length == n && value.equals(0, n, this.deny[i])) {
          this.outcomes.record(DENIED, 1);
          return req.reject(ERR_PERMISSION_DENIED, "${name}: denied");
        }
      }
    }
    this.outcomes.record(PASSED, 1);
    return FILTER_CONTINUE;
  }
}

// Calls wanted beyond onRequest: none (see CALL_RESPONSE, CALL_TIMER, CALL_DONE).
registerFilter(new FilterInfo("${name}", "0.1.0", 0), (): Filter => new ${pascal(name)}Filter());
`;

const testSource = (name: string) => `// Runs the built filter through meltemi's real loader over metadata fixtures (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorKind, FilterHarness } from 'meltemi/filter-harness';

const WASM = new URL('../build/${name}.wasm', import.meta.url).pathname;

test('refuses a denied value with a permission-denied error; passes the rest', async () => {
  const f = await FilterHarness.load(WASM, { key: 'method', deny: ['drop'] });
  const denied = f.request([['method', 'drop']]);
  assert.deepEqual([denied.action, denied.replyKind], ['local_reply', ErrorKind.PERMISSION_DENIED]);
  assert.equal(f.request([['method', 'get']]).action, 'continue');
  assert.equal(f.request([['other', 'drop']]).action, 'continue');
});

test('refuses a config without key or deny, saying why', async () => {
  await assert.rejects(FilterHarness.load(WASM, { deny: ['x'] }), /key must be a metadata key/);
  await assert.rejects(FilterHarness.load(WASM, { key: 'method' }), /deny must be a list/);
});
`;

const readme = (name: string, meltemi: string) => `# ${name} — a meltemi filter

\`\`\`sh
npm install        # meltemi (from ${meltemi}) and AssemblyScript
npm test           # builds build/${name}.wasm and runs test/*.test.mjs through meltemi's loader
\`\`\`

\`assembly/index.ts\` is the filter; the reference is the Filters section of meltemi's
\`sdk/README.md\` and \`sdk/ABI-1.1.md\`. To use it, put \`build/\` (or the .wasm) in the
proxy's plugin directory, next to the codecs, and list it on a listener:

\`\`\`yaml
listeners:
  - name: redis
    protocol: redis
    filters: [ { name: ${name}, config: { key: command, deny: [ FLUSHALL ] } } ]
\`\`\`

meltemi reloads the filter when \`npm run build\` replaces the .wasm.
`;

export function filterSources(name: string, meltemiDir: string): PluginSources {
  return { index: filterSource(name), test: testSource(name), readme: readme(name, meltemiDir) };
}
