// A resource file is input, never a reason to exit: an alias-bomb YAML or the resource directory
// being deleted leave `meltemi control-plane` running on its last good resources. Versions are
// content hashes, so a restarted control plane never repeats a version with other content.

import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleLogger } from '../../runtime/core/logger';
import { XdsServer } from '../../runtime/control-plane/xds-server';
import { buildConfig } from '../../runtime/control-plane/route-builder';
import { readResource, Resource } from '../../runtime/control-plane/resources';
import { parseAllDocuments } from 'yaml';
import { SE } from '../helpers/istio-resources';
import { MELTEMI_BIN } from '../helpers/paths';
import { freePort } from '../helpers/ports';

const HOST = 'redis.demo.svc.cluster.local';
const BOMB = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, i) => {
  const prev = String.fromCharCode(97 + i);
  const name = String.fromCharCode(98 + i);
  return `${name}: &${name} [*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev}]`;
})].join('\n') + '\nkind: MetaRouter\n';

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('containment: the control plane outlives its inputs', function () {
  this.timeout(60_000);
  let proc: ChildProcess;
  let out = '';
  let dir: string;

  before(async () => {
    const root = mkdtempSync(join(tmpdir(), 'meltemi-cp-'));
    dir = join(root, 'resources');
    mkdirSync(dir);
    writeFileSync(join(dir, 'se.yaml'), SE(HOST, 6379, 'redis', [{ address: '127.0.0.1', port: 6379, version: 'v1' }]));
    const port = await freePort();
    proc = spawn(process.execPath, [MELTEMI_BIN, 'control-plane', '--resources', dir, '--port', String(port), '--debounce', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => { out += d; });
    proc.stderr!.on('data', (d) => { out += d; });
    await until('control plane serving', () => out.includes('control plane serving'));
  });

  after(() => {
    proc?.kill('SIGKILL');
  });

  it('an alias-bomb YAML is reported by file and document; the process keeps running', async () => {
    writeFileSync(join(dir, 'bomb.yaml'), BOMB);
    await until('the bomb reported', () => /bomb\.yaml: document 0: .*alias/i.test(out));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(proc.exitCode, null, out);
  });

  it('the resource directory deleted: reported, the process keeps running, and a new one is read', async () => {
    rmSync(dir, { recursive: true, force: true });
    await until('the missing directory reported', () => /cannot read the resource directory/.test(out));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(proc.exitCode, null, out);
    mkdirSync(dir);
    writeFileSync(join(dir, 'se.yaml'), SE(HOST, 6379, 'redis', [{ address: '127.0.0.1', port: 6380, version: 'v1' }]));
    await until('the recreated directory read', () => /clusters changed/.test(out.slice(out.lastIndexOf('cannot read the resource directory'))));
    assert.equal(proc.exitCode, null, out);
  });
});

describe('containment: xDS versions are unique across control-plane restarts', () => {
  const resources = (yaml: string): Resource[] => parseAllDocuments(yaml).map((d, i) => readResource(d.toJSON(), `document ${i}`)).filter((r): r is Resource => r !== undefined);
  const versions = (port: number) => {
    const server = new XdsServer(new ConsoleLogger('silent'));
    server.setConfig(buildConfig(resources(SE(HOST, 6379, 'redis', [{ address: '127.0.0.1', port, version: 'v1' }]))));
    return server.versions();
  };

  it('two processes with other endpoints never share a version; with the same content they do', () => {
    const first = versions(7001);
    const restartedChanged = versions(7002);
    const restartedSame = versions(7001);
    assert.notEqual(restartedChanged.clusters, first.clusters);
    assert.equal(restartedSame.clusters, first.clusters);
    assert.deepEqual(restartedSame.routes, first.routes);
  });
});
