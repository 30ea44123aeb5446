// The Kubernetes manifests in examples/kubernetes/: each object against the Kubernetes API schema
// (kubernetes-models' JSON schemas, offline), the embedded meltemi config through meltemi's own
// validation, and the pieces that must agree (capture ports, UID, admin port, probes, Istio's
// exclusions) checked against each other. No cluster runs here: see docs/sidecar.md.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../runtime/config/load';
import { captureOptions } from '../runtime/cli/iptables-command';
import { ROOT } from './helpers/paths';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>; // parsed YAML, of whatever shape the manifests have
const DIR = join(ROOT, 'examples', 'kubernetes');
// kubernetes-models is ESM only; the compiled tests are CommonJS, whose import() tsc would turn into require().
const importEsm = new Function('m', 'return import(m)') as (m: string) => Promise<Record<string, new (o: Obj) => { validate(): void }>>;

async function validateObject(o: Obj): Promise<void> {
  const [group, version] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : ['', String(o.apiVersion)];
  const mod = await importEsm(group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`);
  const Kind = mod[o.kind as string];
  assert.ok(Kind, `no schema for ${o.apiVersion} ${o.kind}`);
  new Kind(o).validate();
}

function load(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => d.toJS() as Obj);
}

/** `--flag value` pairs of an args list. */
function flags(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) if (args[i].startsWith('--') && i + 1 < args.length) out[args[i].slice(2)] = args[++i];
  return out;
}

describe('Kubernetes manifests (examples/kubernetes)', () => {
  for (const file of ['meltemi-alone.yaml', 'beside-istio.yaml']) {
    describe(file, () => {
      const objects = load(file);
      const deployment = objects.find((o) => o.kind === 'Deployment')!;
      const pod = deployment.spec.template.spec as Obj;
      const init = (pod.initContainers as Obj[]).find((c) => c.name === 'meltemi-init')!;
      const sidecar = (pod.initContainers as Obj[]).find((c) => c.name === 'meltemi')!;
      const configMap = objects.find((o) => o.kind === 'ConfigMap')!;
      const config = parseConfig(configMap.data['meltemi.yaml'] as string, ROOT);
      const rules = captureOptions(flags((init.args as string[]).slice(1)));

      it('every object is valid against the Kubernetes API schema', async () => {
        assert.ok(objects.length >= 3);
        for (const o of objects) await validateObject(o);
      });

      it('embeds a meltemi config that meltemi accepts', () => {
        assert.ok(config.capture.inbound && config.capture.outbound);
        assert.ok(config.listeners.every((l) => l.bindToPort === false));
      });

      it('captures to the ports meltemi listens on, exempting the UID/GID meltemi runs as', () => {
        assert.equal(rules.outboundPort, config.capture.outbound!.port);
        assert.equal(rules.inboundPort, config.capture.inbound!.port);
        assert.equal(rules.proxyUid, sidecar.securityContext.runAsUser);
        assert.equal(rules.proxyGid, sidecar.securityContext.runAsGroup);
        assert.deepEqual(init.securityContext.capabilities.add, ['NET_ADMIN', 'NET_RAW']);
        assert.equal(sidecar.restartPolicy, 'Always', 'a native sidecar: up before the application, down after it');
      });

      it('probes the admin port, which inbound capture leaves alone, and drains within the grace period', () => {
        const admin = config.admin!.port;
        assert.equal(sidecar.readinessProbe.httpGet.port, admin);
        assert.equal(sidecar.readinessProbe.httpGet.path, '/ready');
        const excluded = rules.excludeInboundPorts.includes(admin) || (rules.inboundPorts !== '*' && !rules.inboundPorts.includes(admin));
        assert.ok(excluded, `admin port ${admin} would be captured`);
        assert.ok(config.drain.timeoutMs < pod.terminationGracePeriodSeconds * 1000);
      });

      it('serves, through capture, exactly the ports the Service names as meta-protocol ports', () => {
        const service = objects.find((o) => o.kind === 'Service')!;
        const meta = (service.spec.ports as Obj[]).filter((p) => String(p.name).startsWith('tcp-metaprotocol-')).map((p) => p.targetPort as number);
        const inbound = config.listeners.filter((l) => l.trafficDirection === 'inbound').map((l) => l.port);
        assert.deepEqual(inbound.sort(), meta.sort());
      });
    });
  }

  it('beside Istio: Envoy is told to leave alone exactly what meltemi captures, and they use different ports and UIDs', () => {
    const objects = load('beside-istio.yaml');
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const ann = deployment.spec.template.metadata.annotations as Record<string, string>;
    const init = (deployment.spec.template.spec.initContainers as Obj[]).find((c) => c.name === 'meltemi-init')!;
    const rules = captureOptions(flags((init.args as string[]).slice(1)));
    const list = (s: string) => s.split(',').map(Number).sort();
    assert.ok(rules.inboundPorts !== '*');
    for (const p of rules.inboundPorts as number[]) assert.ok(list(ann['traffic.sidecar.istio.io/excludeInboundPorts']).includes(p));
    assert.deepEqual(list(ann['traffic.sidecar.istio.io/excludeOutboundPorts']), [...rules.outboundPorts].sort());
    // Istio's Envoy: UID 1337, ports 15001/15006/15000/15020/15021/15090.
    assert.notEqual(rules.proxyUid, 1337);
    for (const p of [rules.inboundPort, rules.outboundPort]) assert.ok(![15000, 15001, 15006, 15020, 15021, 15090].includes(p));
  });

  it('the schema check rejects what Kubernetes would (it can fail)', async () => {
    const [, deployment] = load('meltemi-alone.yaml');
    deployment.spec.template.spec.containers[0].ports[0].containerPort = 'six';
    await assert.rejects(validateObject(deployment), /containerPort must be integer/);
  });

  it('the image definition copies only what exists', () => {
    const dockerfile = readFileSync(join(DIR, 'Dockerfile'), 'utf8');
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(\S+)/gm)) {
      for (const src of m[1] === '.' ? [] : [m[1]]) assert.ok(existsSync(join(ROOT, src)), src);
    }
    for (const m of dockerfile.matchAll(/^COPY --from=build \/src\/(\S+)/gm)) {
      const top = m[1].split('/')[0];
      assert.ok(['node_modules', 'build'].includes(top) || existsSync(join(ROOT, m[1])), m[1]);
    }
  });
});
