// The meltemi command line: help, validate, errors that name the field, clean shutdown.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfigFile, parseConfig } from '../runtime/config/load';
import { MeltemiProcess } from './helpers/meltemi-process';
import { MELTEMI_BIN, PLUGIN_DIR, ROOT } from './helpers/paths';
import { freePort } from './helpers/ports';

function meltemi(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MELTEMI_BIN, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function configFile(yaml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'meltemi-cli-')), 'meltemi.yaml');
  writeFileSync(file, yaml);
  return file;
}

describe('cli', () => {
  it('--help prints usage and exits 0', async () => {
    const r = await meltemi(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /meltemi run --config FILE/);
  });

  it('no command: usage on stdout, exit 2', async () => {
    const r = await meltemi([]);
    assert.equal(r.code, 2);
    assert.match(r.stdout, /Usage:/);
  });

  it('validate prints the effective config of the bundled example as YAML that validates to the same config', async () => {
    const example = join(ROOT, 'examples/redis-prefix-routing/meltemi.yaml');
    const r = await meltemi(['validate', '--config', example]);
    assert.equal(r.code, 0, r.stderr);
    const printed = parse(r.stdout);
    assert.equal(printed.listeners[0].protocol, 'redis');
    assert.equal(printed.plugins.directory, PLUGIN_DIR);
    assert.equal(printed.listeners[0].route_config.routes[0].match.metadata[0].prefix_match, 'cache:', 'input field names, not internal ones');
    assert.deepEqual(parseConfig(r.stdout, '/elsewhere'), await loadConfigFile(example), 'fed back, it means the same');
    const again = await meltemi(['validate', '--config', configFile(r.stdout)]);
    assert.equal(again.stdout.split('\n').slice(1).join('\n'), r.stdout.split('\n').slice(1).join('\n'));
  });

  it('validate reports every schema problem at once, each naming its field', async () => {
    const r = await meltemi(['validate', '--config', configFile(`
log_level: loud
listeners:
  - { name: a, port: 99999, protocol: redis, route_config: { routes: [ { route: { cluster: c } } ] } }
  - { name: b, port: 0, protocol: redis, route_confg: {} }
  - { name: d, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: c } }, { route: { cluster: nowhere } } ] } }
clusters:
  - { name: c, endpoints: [] }
`)]);
    assert.equal(r.code, 1);
    // Also: listeners[1] has neither routes nor rds, and the default plugins.directory
    // (build/plugins beside this config file) does not exist.
    assert.match(r.stderr, /: 7 problems\n/);
    assert.match(r.stderr, /listeners\[1\]: needs exactly one of route_config or rds/);
    assert.match(r.stderr, /plugins\.directory: .*build\/plugins: cannot read plugin directory/);
    for (const line of [
      /clusters\[0\]\.endpoints: must have at least one endpoint/,
      /listeners\[0\]\.port: must be between 0 and 65535/,
      /listeners\[1\]\.route_confg: unknown field \(did you mean route_config\?\)/,
      /listeners\[2\]\.route_config\.routes\[1\]\.route\.cluster: unknown cluster "nowhere"/,
      /log_level: must be one of/,
    ]) assert.match(r.stderr, line);
    assert.doesNotMatch(r.stderr, /unknown cluster "c"/, 'a cluster with another mistake is not also unknown');
  });

  it('validate: several problems in one listener, indices as written, and start-time checks in the same pass', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meltemi-validate-'));
    const r = await meltemi(['validate', '--config', configFile(`
plugins: { directory: ${JSON.stringify(join(dir, 'absent'))} }
listeners:
  - { name: a, port: 1, protocol: redis, upstream_connection: pooled, idle_timeout: forever, route_config: { routes: [ { route: { cluster: c } } ] } }
  - { name: b, port: 0, protocol: redis, rds: { route_config_name: x } }
  - { name: a, port: 0, protocol: redis, route_config: { routes: [ { route: { cluster: c } } ] } }
clusters: [ { name: c, endpoints: [ { address: 127.0.0.1, port: 1 } ] } ]
`)]);
    assert.equal(r.code, 1);
    const lines = r.stderr.split('\n').slice(1).filter(Boolean).map((l) => l.trim());
    assert.deepEqual(lines.map((l) => l.slice(0, l.indexOf(':'))).sort(), [
      'listeners[0].idle_timeout', 'listeners[0].upstream_connection', 'listeners[1].rds', 'listeners[2].name', 'plugins.directory',
    ]);
    assert.match(r.stderr, /^meltemi validate: .*: 5 problems\n/);
    assert.match(r.stderr, /listeners\[2\]\.name: duplicate name "a"/);
  });

  const runChecks: Array<[string, (dir: string) => string, RegExp]> = [
    ['a protocol no codec provides', () => `plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }`, /listeners\[0\]\.protocol: no codec plugin for protocol "no-such-protocol"/],
    ['a missing plugin directory', (dir) => `plugins: { directory: ${JSON.stringify(join(dir, 'absent'))} }`, /plugins\.directory: .*cannot read plugin directory/],
    ['an unreadable admin token', (dir) => `plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }\nadmin: { port: 0, token_file: ${JSON.stringify(join(dir, 'no-token'))} }`, /admin\.token_file: /],
  ];
  for (const [what, head, message] of runChecks) {
    it(`validate checks what run checks: ${what}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'meltemi-validate-'));
      const file = configFile(`${head(dir)}
listeners: [ { name: x, port: 0, protocol: ${what.startsWith('a protocol') ? 'no-such-protocol' : 'redis'}, route_config: { routes: [ { route: { cluster: c } } ] } } ]
clusters: [ { name: c, endpoints: [ { address: 127.0.0.1, port: 1 } ] } ]
`);
      const r = await meltemi(['validate', '--config', file]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, message);
    });
  }

  it('validate checks filters as run would: present in the plugin directory, and accepting their config', async () => {
    const r = await meltemi(['validate', '--config', configFile(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - { name: r, port: 0, protocol: redis, filters: [ { name: local-ratelimit, config: { tokenBucket: { maxTokens: 0 } } }, { name: nope } ], route_config: { routes: [ { route: { cluster: c } } ] } }
clusters: [ { name: c, endpoints: [ { address: 127.0.0.1, port: 1 } ] } ]
`)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /listeners\[0\]\.filters\[0\]\.config: filter local-ratelimit refused its config: tokenBucket\.maxTokens must be a number >= 1/);
    assert.match(r.stderr, /listeners\[0\]\.filters\[1\]\.name: no filter plugin "nope"/);
  });

  it('run with an invalid config exits 1 naming the field and the error code', async () => {
    const r = await meltemi(['run', '--config', configFile('listeners:\n  - name: x\n    port: 99999\n')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[MELTEMI_CONFIG_INVALID\] listeners\[0\]\.port: must be between 0 and 65535/);
  });

  it('run with a protocol no plugin provides exits 1 and lists what is loaded', async () => {
    const r = await meltemi(['run', '--config', configFile(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners: [ { name: x, port: 0, protocol: no-such-protocol, route_config: { routes: [ { route: { cluster: c } } ] } } ]
clusters: [ { name: c, endpoints: [ { address: 127.0.0.1, port: 1 } ] } ]
`)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /listeners\[0\]\.protocol: no codec plugin for protocol "no-such-protocol" .*\(loaded: [^)]*redis[^)]*\)/);
  });

  it('run serves until SIGTERM, then exits 0', async () => {
    const port = await freePort();
    const proc = await MeltemiProcess.start(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners: [ { name: x, port: ${port}, protocol: redis, route_config: { routes: [ { route: { cluster: c } } ] } } ]
clusters: [ { name: c, endpoints: [ { address: 127.0.0.1, port: 1 } ] } ]
`, port);
    const code = await proc.stop();
    assert.equal(code, 0);
  });

  for (const bad of ['0', '65', '0x2', '1e1', '2.0', ' 3 ', 'abc', '']) {
    it(`--workers ${JSON.stringify(bad)} is refused before the config is read`, async () => {
      const r = await meltemi(['run', '--config', '/nonexistent.yaml', '--workers', bad]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--workers .* is not a count from 1 to 64/);
    });
  }

  it('validate --workers 2 with xds.lds names the field', async () => {
    const r = await meltemi(['validate', '--workers', '2', '--config', configFile(`
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
xds: { address: 127.0.0.1, port: 15010, lds: true, node: { id: a, cluster: b } }
`)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /xds\.lds: listeners from LDS are not served by worker threads yet/);
  });

  it('an unknown flag is a usage error', async () => {
    const child = spawn(process.execPath, [MELTEMI_BIN, 'run', '--bogus']);
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 2);
  });

  const runners: Array<[string, string[], number, RegExp]> = [
    ['fuzz --help', ['fuzz/run.js', '--help'], 0, /usage: npm run fuzz -- \[--frames N\]/],
    ['fuzz with an unknown flag', ['fuzz/run.js', '--bogus'], 2, /fuzz: Unknown option '--bogus'/],
    ['fuzz with an unknown codec', ['fuzz/run.js', 'nope'], 2, /fuzz: unknown codec\(s\): nope/],
    ['bench --help', ['bench/run.js', '--help'], 0, /usage: npm run bench -- \[redis\|thrift\|mysql\|memcached\|filters\|resilience\|latency\|metering\|memory\|profile\|workers\|telemetry\|xds\|security…\]/],
    ['bench with an unknown benchmark', ['bench/run.js', 'nope'], 2, /bench: unknown benchmark\(s\): nope/],
  ];
  for (const [what, args, code, message] of runners) {
    it(`${what}: usage, exit ${code}, no stack trace`, async () => {
      const r = await new Promise<{ code: number; out: string }>((resolve) => {
        execFile(process.execPath, [join(ROOT, 'build', 'test', ...args.slice(0, 1)), ...args.slice(1)], (err, stdout, stderr) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr });
        });
      });
      assert.equal(r.code, code, r.out);
      assert.match(r.out, message);
      assert.doesNotMatch(r.out, /\n\s+at /, 'no stack trace');
    });
  }
});
