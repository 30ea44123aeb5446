// The meltemi command line: run, validate, control-plane, new codec.

import { parseArgs } from 'node:util';
import { checkConfigFile, loadConfigFile } from '../config/load';
import { stringify } from 'yaml';
import { ConfigError, isMeltemiError } from '../core/errors';
import { preflight } from '../config/preflight';
import { toInputConfig } from '../config/print';
import { Meltemi } from '../server';
import { ConsoleLogger } from '../core/logger';
import { sharedPluginCompiler } from '../plugin/plugin-compiler';
import { newPlugin } from './new-plugin';
import { iptablesCommand } from './iptables-command';
import { defaultWorkers } from '../workers/worker-count';

/** More threads than this would spend memory, not add throughput, on any machine a sidecar runs on. */
const MAX_WORKERS = 64;

/** `--workers` as written: decimal digits only (no `0x2`, `1e1`, `2.0`), 1 to MAX_WORKERS; null if not. */
function workerCount(text: string): number | null {
  if (!/^[1-9][0-9]{0,2}$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_WORKERS ? n : null;
}

async function controlPlane(values: { resources?: string; address?: string; port?: string; debounce?: string; 'listener-address'?: string; 'tls-cert-chain'?: string; 'tls-private-key'?: string; 'tls-trust-bundle'?: string }): Promise<number> {
  const tlsFiles = [values['tls-cert-chain'], values['tls-private-key'], values['tls-trust-bundle']];
  if (tlsFiles.some((f) => f !== undefined) && !tlsFiles.every((f) => f !== undefined)) {
    process.stderr.write('meltemi control-plane: mTLS needs all of --tls-cert-chain, --tls-private-key and --tls-trust-bundle\n');
    return 2;
  }
  if (!values.resources) {
    process.stderr.write('meltemi control-plane: --resources DIR is required\n');
    return 2;
  }
  const port = Number(values.port ?? 15010);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`meltemi control-plane: --port ${values.port} is not a port\n`);
    return 2;
  }
  // Loaded here: `meltemi run` without xDS never needs gRPC or the Envoy protos.
  const { ControlPlane } = await import('../control-plane/control-plane');
  const { DirectorySource } = await import('../control-plane/resource-source');
  const cp = new ControlPlane(new DirectorySource(values.resources, Number(values.debounce ?? 100)), new ConsoleLogger('info'),
    { address: values['listener-address'] ?? '127.0.0.1' });
  try {
    const [certChain, privateKey, trustBundle] = tlsFiles;
    await cp.start(values.address ?? '127.0.0.1', port, certChain && privateKey && trustBundle ? { certChain, privateKey, trustBundle } : undefined);
  } catch (err) {
    process.stderr.write(`meltemi control-plane: ${(err as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  cp.stop();
  return 0;
}

/** Exit 0 and the effective config (YAML, input field names) when `run` would start; else 1 and every problem. */
async function validate(file: string, workers: number | undefined): Promise<number> {
  let problems: string[];
  let config;
  try {
    const checked = await checkConfigFile(file);
    config = checked.config;
    problems = checked.errors.map((e) => e.line);
    // Start-time checks run on the sections that are valid, so one pass reports everything.
    const broken = new Set(checked.errors.map((e) => e.field.split(/[.[]/)[0]));
    if (config) problems.push(...await preflight(config, new ConsoleLogger('silent'), broken));
    if (config?.xds?.lds && workers !== undefined && workers > 1) problems.push(`xds.lds: listeners from LDS are not served by worker threads yet: run with --workers 1 (--workers ${workers} given)`);
  } catch (err) {
    problems = [(err as Error).message];
  } finally {
    await sharedPluginCompiler().close();
  }
  if (problems.length > 0 || !config) {
    process.stderr.write(`meltemi validate: ${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.map((p) => `  ${p}\n`).join('')}`);
    return 1;
  }
  process.stdout.write(`# ${file}: valid. The effective config, defaults filled in; meltemi run --config accepts it as it is.\n${stringify(toInputConfig(config))}`);
  return 0;
}

const HELP = `meltemi — a layer-7 service-mesh proxy with WebAssembly protocol codecs

Usage:
  meltemi run --config FILE [--workers N]
                                start the proxy described by FILE (YAML; see docs/config.md)
                                with N worker threads sharing its listeners (default: the CPUs
                                the process may use, at most 2; 1 with xds.lds)
  meltemi validate --config FILE [--workers N]
                                check FILE as run would (schema, plugin directory, a codec for
                                every listener, admin token), report every problem, and print
                                the effective config as YAML that run accepts
  meltemi control-plane --resources DIR [--address A] [--port N] [--debounce MS] [--listener-address A]
                        [--tls-cert-chain F --tls-private-key F --tls-trust-bundle F]
                                serve routes, clusters, endpoints and listeners built from the
                                Aeraki and Istio resources (MetaRouter, ServiceEntry,
                                DestinationRule, ApplicationProtocol) in DIR over RDS and ADS,
                                and AuthorizationPolicies to the proxies they select;
                                DIR is watched. Listeners bind at a service's loopback address,
                                else at --listener-address (default 127.0.0.1). With the --tls
                                files: mTLS, and every proxy must present a certificate
  meltemi new codec|filter NAME [--dir DIR]
                                create a codec or filter project (AssemblyScript source, harness
                                test, build script) in DIR (default ./NAME), depending on this meltemi
  meltemi iptables [--dry-run] [--remove] [options]
                                install (or remove, or print) the transparent-capture rules of a
                                sidecar in this network namespace (meltemi iptables --help)
  meltemi --help                this text

Signals: SIGTERM drains (readiness fails, listeners stop accepting except the outbound side
behind capture, connections close once idle; exit when none is left, after drain.min_duration, or at drain.timeout); SIGINT or a
second SIGTERM stops at once; SIGHUP reloads the plugin directory.`;

export async function main(argv: string[]): Promise<number> {
  // Its own options (and none of the others'): parsed by the command itself.
  if (argv[0] === 'iptables') return iptablesCommand(argv.slice(1), process.stdout, process.stderr);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: {
      config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' },
      resources: { type: 'string' }, address: { type: 'string' }, port: { type: 'string' }, debounce: { type: 'string' }, 'listener-address': { type: 'string' },
      'tls-cert-chain': { type: 'string' }, 'tls-private-key': { type: 'string' }, 'tls-trust-bundle': { type: 'string' },
      dir: { type: 'string' }, workers: { type: 'string', short: 'w' },
    } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  const [command] = parsed.positionals;
  if (parsed.values.help || !command) {
    process.stdout.write(`${HELP}\n`);
    return parsed.values.help ? 0 : 2;
  }
  if (command === 'control-plane') return controlPlane(parsed.values);
  if (command === 'new') {
    const [, what, name] = parsed.positionals;
    if (what !== 'codec' && what !== 'filter') {
      process.stderr.write(`meltemi new: "meltemi new codec NAME" or "meltemi new filter NAME"\n`);
      return 2;
    }
    return newPlugin(what, name, parsed.values.dir, process.stdout, process.stderr);
  }
  if (command !== 'run' && command !== 'validate') {
    process.stderr.write(`unknown command "${command}"\n\n${HELP}\n`);
    return 2;
  }
  if (!parsed.values.config) {
    process.stderr.write(`meltemi ${command}: --config FILE is required\n`);
    return 2;
  }
  const workers = parsed.values.workers === undefined ? undefined : workerCount(parsed.values.workers);
  if (workers === null) {
    process.stderr.write(`meltemi ${command}: --workers ${JSON.stringify(parsed.values.workers)} is not a count from 1 to ${MAX_WORKERS}\n`);
    return 2;
  }
  if (command === 'validate') return validate(parsed.values.config, workers);
  try {
    const config = await loadConfigFile(parsed.values.config);
    const proxy = new Meltemi(config, { workers: workers ?? (config.xds?.lds ? 1 : defaultWorkers()) });
    // Handlers go in before start(): a signal that arrives while listeners are opening must
    // still stop the proxy cleanly rather than kill it. SIGTERM (Kubernetes, systemd) drains
    // first; SIGINT (a terminal's Ctrl-C), or a second SIGTERM, stops at once.
    let signal = 'SIGINT' as 'SIGINT' | 'SIGTERM';
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => {
        signal = 'SIGTERM';
        resolve();
      });
    });
    process.on('SIGHUP', () => { void proxy.reloadPlugins(); });
    // A signal during start (a plugin still compiling) stops the proxy without waiting for it.
    const starting = proxy.start();
    const first = await Promise.race([starting.then(() => 'started' as const), stopped.then(() => 'stopped' as const)]);
    if (first === 'started') await stopped;
    if (first === 'started' && signal === 'SIGTERM') {
      const drain = proxy.drain();
      const again = new Promise<void>((resolve) => {
        process.once('SIGTERM', () => resolve());
        process.once('SIGINT', () => resolve());
      });
      const outcome = await Promise.race([drain.done, again.then(() => 'interrupted' as const)]);
      process.stderr.write(`meltemi: drain ${outcome === 'idle' ? 'finished: no connection left' : outcome === 'timeout' ? `timed out after ${proxy.config.drain.timeoutMs} ms: closing what is left` : 'cut short by a second signal'}\n`);
    }
    // The compiler worker may be busy with a plugin: it is ended, not waited for.
    await sharedPluginCompiler().close();
    if (first === 'stopped') await starting.catch(() => undefined);
    await proxy.stop();
    return 0;
  } catch (err) {
    await sharedPluginCompiler().close();
    const lines = err instanceof ConfigError ? err.all.map((e) => e.line) : [(err as Error).message];
    process.stderr.write(lines.map((l) => `meltemi: ${isMeltemiError(err) ? `[${err.code}] ` : ''}${l}\n`).join(''));
    return 1;
  }
}
