// Hand-written resources are checked as strictly as the proxy's own config: a misspelled field,
// kind or version is an error naming file, document and field, and an invalid resource never
// changes routing — the last good version keeps serving, and a MetaRouter that was never valid
// withholds its service's routes instead of falling back to the default route.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ControlPlane } from '../runtime/control-plane/control-plane';
import { DirectorySource } from '../runtime/control-plane/resource-source';
import { readResource } from '../runtime/control-plane/resources';
import { CaptureLogger } from './helpers/capture-logger';
import { DR, SE } from './helpers/istio-resources';

const HOST = 'thrift.demo.svc.cluster.local';
const ROUTE = `${HOST}_9090`;
const EPS = [{ address: '127.0.0.1', port: 9091, version: 'v1' }, { address: '127.0.0.1', port: 9092, version: 'v2' }];

const router = (body: string, head = 'apiVersion: metaprotocol.aeraki.io/v1alpha1\nkind: MetaRouter') => `${head}
metadata: { name: r, namespace: demo }
spec:
  hosts: [ ${HOST} ]
${body}`;
const TO_V2 = `  routes:
    - name: v2
      match: { attributes: { method: { exact: sayHello } } }
      route: [ { destination: { host: ${HOST}, subset: v2 } } ]
`;

function read(yaml: string, notes: string[] = []) {
  return parseAllDocuments(yaml).map((d, i) => readResource(d.toJSON(), `document ${i}`, notes));
}

describe('control plane: unknown fields, kinds and versions are errors naming document and field', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['a misspelled attributes', router(TO_V2.replace('attributes', 'atributes')), /document 0\.spec\.routes\[0\]\.match\.atributes: unknown field \(did you mean attributes\?\)/],
    ['a misspelled kind', router(TO_V2, 'apiVersion: metaprotocol.aeraki.io/v1alpha1\nkind: MetaRoutr'), /document 0\.kind: unknown kind "MetaRoutr" in metaprotocol\.aeraki\.io \(did you mean MetaRouter\?\)/],
    ['a misspelled routes key', router(TO_V2.replace('routes:', 'rutes:')), /document 0\.spec\.rutes: unknown field \(did you mean routes\?\)/],
    ['a MetaRouter without routes', router(''), /document 0\.spec: needs routes/],
    ['a misspelled destination', router(TO_V2.replace('destination:', 'destinaton:')), /routes\[0\]\.route\[0\]\.destinaton: unknown field \(did you mean destination\?\)/],
    ['a misspelled version', router(TO_V2, 'apiVersion: metaprotocol.aeraki.io/v1alpah1\nkind: MetaRouter'), /document 0\.apiVersion: unknown version "v1alpah1"/],
    ['a misspelled API group', router(TO_V2, 'apiVersion: metaprotocol.aeraki.oi/v1alpha1\nkind: MetaRouter'), /document 0\.apiVersion: unknown API group "metaprotocol\.aeraki\.oi" \(did you mean metaprotocol\.aeraki\.io\?\)/],
    ['a misspelled metadata', router(TO_V2).replace('metadata:', 'metdata:'), /document 0\.metdata: unknown field \(did you mean metadata\?\)/],
    ['a misspelled hash key field', DR(HOST, 'method').replace('httpHeaderName', 'httpHeadername'), /consistentHash\.httpHeadername: unknown field \(did you mean httpHeaderName\?\)/],
    ['a misspelled endpoint field', SE(HOST, 9090, 'thrift', EPS).replace(/labels:/g, 'lables:'), /spec\.endpoints\[0\]\.lables: unknown field \(did you mean labels\?\)/],
  ];
  for (const [what, yaml, message] of cases) {
    it(`rejects ${what}`, () => assert.throws(() => read(yaml), message));
  }

  it('passes over kinds it does not use (a VirtualService, a Deployment) and notes valid fields without effect', () => {
    const notes: string[] = [];
    const got = read([
      'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: vs }\nspec: { hosts: [a] }',
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d }\nspec: {}',
      router(TO_V2 + '  exportTo: [ "." ]\n'),
    ].join('\n---\n'), notes);
    assert.deepEqual(got.map((r) => r?.kind), [undefined, undefined, 'MetaRouter']);
    assert.deepEqual(notes, ['document 2.spec.exportTo: not acted on by meltemi; ignored']);
  });
});

describe('control plane: an invalid resource keeps the last good routes of its service', function () {
  this.timeout(20_000);
  let dir: string;
  let logger: CaptureLogger;
  let cp: ControlPlane;

  const errorsLogged = () => logger.lines.filter((l) => l.message.startsWith('invalid resource')).length;
  async function until(what: string, ok: () => boolean): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`not within 10 s: ${what}\n${logger.lines.map((l) => l.message).join('\n')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  /** Writes the MetaRouter file and waits until the control plane took the next snapshot. */
  async function writeRouter(yaml: string, expect: 'error' | 'update'): Promise<void> {
    const before = expect === 'error' ? errorsLogged() : logger.lines.length;
    writeFileSync(join(dir, 'router.yaml'), yaml);
    if (expect === 'error') await until('the error logged', () => errorsLogged() > before);
    else await until('the update applied', () => logger.lines.slice(before).some((l) => l.message.startsWith('config updated')));
  }
  const served = () => cp.server.routeConfiguration(ROUTE)?.routes.map((r) => r.route.kind === 'cluster' ? r.route.cluster : r.route.clusters.map((c) => c.name).join('+'));
  const lastError = () => logger.lines.filter((l) => l.message.startsWith('invalid resource')).at(-1)!.message;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meltemi-cp-lastgood-'));
    logger = new CaptureLogger();
    writeFileSync(join(dir, 'service.yaml'), SE(HOST, 9090, 'thrift', EPS) + '---' + DR(HOST));
  });
  afterEach(() => {
    cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('weights not adding to 100, a misspelled kind, broken YAML: each keeps the last good routes', async () => {
    writeFileSync(join(dir, 'router.yaml'), router(TO_V2));
    cp = new ControlPlane(new DirectorySource(dir, 10), logger);
    await cp.start('127.0.0.1', 0);
    const good = [`outbound|9090|v2|${HOST}`];
    assert.deepEqual(served(), good);

    await writeRouter(router(TO_V2.replace(`route: [ { destination: { host: ${HOST}, subset: v2 } } ]`, `route: [ { destination: { host: ${HOST}, subset: v1 }, weight: 10 }, { destination: { host: ${HOST}, subset: v2 }, weight: 10 } ]`)), 'error');
    assert.match(lastError(), /router\.yaml: document 0\.spec\.routes\[0\]\.route: weights must add up to 100; the last good MetaRouter\/demo\/r keeps serving/);
    assert.deepEqual(served(), good);

    await writeRouter(router(TO_V2.replace(`subset: v2`, 'subset: v1'), 'apiVersion: metaprotocol.aeraki.io/v1alpha1\nkind: MetaRoutr'), 'error');
    assert.match(lastError(), /unknown kind "MetaRoutr".*the last good MetaRouter\/demo\/r keeps serving/);
    assert.deepEqual(served(), good);

    await writeRouter('kind: [unclosed\n', 'error');
    assert.deepEqual(served(), good);

    await writeRouter(router(TO_V2.replace(`subset: v2`, 'subset: v1')), 'update');
    assert.deepEqual(served(), [`outbound|9090|v1|${HOST}`], 'a valid edit applies');

    rmSync(join(dir, 'router.yaml'));
    await until('the default route', () => served()?.[0] === `outbound|9090||${HOST}`);
  });

  const fromTheStart: Array<[string, string, 'withheld' | 'default']> = [
    ['a MetaRouter with a misspelled kind', router(TO_V2, 'apiVersion: metaprotocol.aeraki.io/v1alpha1\nkind: MetaRoutr'), 'withheld'],
    ['a DestinationRule with a misspelled kind (not a router)', DR(HOST).replace('kind: DestinationRule', 'kind: DestinationRul').replace('name: thrift', 'name: other'), 'default'],
  ];
  for (const [what, yaml, outcome] of fromTheStart) {
    it(`${what}, invalid from the start: routes ${outcome === 'withheld' ? 'withheld' : 'keep the default route'}`, async () => {
      writeFileSync(join(dir, 'router.yaml'), yaml);
      cp = new ControlPlane(new DirectorySource(dir, 10), logger);
      await cp.start('127.0.0.1', 0);
      assert.equal(errorsLogged(), 1);
      assert.deepEqual(served(), outcome === 'withheld' ? undefined : [`outbound|9090||${HOST}`]);
    });
  }

  it('a MetaRouter invalid from the start withholds its routes (no silent default route) until it is valid', async () => {
    writeFileSync(join(dir, 'router.yaml'), router(TO_V2.replace('attributes', 'atributes')));
    cp = new ControlPlane(new DirectorySource(dir, 10), logger);
    await cp.start('127.0.0.1', 0);
    assert.equal(served(), undefined);
    assert.match(lastError(), /atributes: unknown field.*routes for thrift\.demo\.svc\.cluster\.local are withheld until it is valid/);
    await writeRouter(router(TO_V2), 'update');
    assert.deepEqual(served(), [`outbound|9090|v2|${HOST}`]);
  });
});
