// The meltemi command line: help, validate, errors that name the field, clean shutdown.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('validate prints the effective config of the bundled example', async () => {
    const r = await meltemi(['validate', '--config', join(ROOT, 'examples/redis-prefix-routing/meltemi.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(r.stdout);
    assert.equal(config.listeners[0].protocol, 'redis');
    assert.equal(config.plugins.directory, PLUGIN_DIR);
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

  it('an unknown flag is a usage error', async () => {
    const child = spawn(process.execPath, [MELTEMI_BIN, 'run', '--bogus']);
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 2);
  });
});
