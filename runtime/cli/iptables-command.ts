// `meltemi iptables`: installs, removes or prints the capture rules (runtime/sidecar/iptables-rules.ts)
// in the current network namespace; an init container or CNI step runs it as root.

import { execFileSync, spawnSync } from 'node:child_process';
import { isIPv4 } from 'node:net';
import { parseArgs } from 'node:util';
import {
  CAPTURE_RULE_DEFAULTS, captureRules, parseCidrs, parseId, parsePort, parsePorts, removalCommands, type CaptureRuleOptions,
} from '../sidecar/iptables-rules';

export const IPTABLES_HELP = `meltemi iptables [--dry-run] [--remove] [options]
  installs transparent capture in this network namespace (needs NET_ADMIN): outbound TCP to
  --outbound-port, inbound TCP to --inbound-port, the proxy's --proxy-uid/--proxy-gid exempt.
  Running it again replaces the rules (idempotent); --remove takes them out; --dry-run prints them.
    --proxy-uid N              (1337)   --proxy-gid N            (the UID)
    --outbound-port N          (15001)  --inbound-port N         (15006)
    --inbound-ports LIST|*     (*)      ports captured inbound; "" for none
    --exclude-inbound-ports LIST        (15020,15021,15090)
    --outbound-cidrs LIST|*    (*)      destinations captured outbound; "" for none
    --outbound-ports LIST      (all)    destination ports captured outbound (beside Istio: the
                                        meta-protocol ports Istio's Envoy is told to leave alone)
    --exclude-outbound-cidrs LIST       --exclude-outbound-ports LIST
    --passthrough-source ADDR  (127.0.0.6)`;

export function captureOptions(values: Record<string, string | boolean | undefined>): CaptureRuleOptions {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const d = CAPTURE_RULE_DEFAULTS;
  const inbound = str('inbound-ports');
  const outbound = str('outbound-cidrs');
  const source = str('passthrough-source') ?? d.passthroughSource;
  if (!isIPv4(source)) throw new Error(`--passthrough-source: "${source}" is not an IPv4 address`);
  return {
    proxyUid: str('proxy-uid') !== undefined ? parseId(str('proxy-uid')!, '--proxy-uid') : d.proxyUid,
    // A proxy given its own UID runs under its own group too, unless told otherwise.
    proxyGid: str('proxy-gid') !== undefined ? parseId(str('proxy-gid')!, '--proxy-gid') : str('proxy-uid') !== undefined ? parseId(str('proxy-uid')!, '--proxy-uid') : d.proxyGid,
    outboundPort: str('outbound-port') !== undefined ? parsePort(str('outbound-port')!, '--outbound-port') : d.outboundPort,
    inboundPort: str('inbound-port') !== undefined ? parsePort(str('inbound-port')!, '--inbound-port') : d.inboundPort,
    inboundPorts: inbound === undefined || inbound.trim() === '*' ? '*' : parsePorts(inbound, '--inbound-ports'),
    excludeInboundPorts: str('exclude-inbound-ports') !== undefined ? parsePorts(str('exclude-inbound-ports')!, '--exclude-inbound-ports') : d.excludeInboundPorts,
    outboundCidrs: outbound === undefined || outbound.trim() === '*' ? '*' : parseCidrs(outbound, '--outbound-cidrs'),
    excludeOutboundCidrs: parseCidrs(str('exclude-outbound-cidrs') ?? '', '--exclude-outbound-cidrs'),
    excludeOutboundPorts: parsePorts(str('exclude-outbound-ports') ?? '', '--exclude-outbound-ports'),
    outboundPorts: parsePorts(str('outbound-ports') ?? '', '--outbound-ports'),
    passthroughSource: source,
  };
}

const OPTIONS = Object.fromEntries([
  'proxy-uid', 'proxy-gid', 'outbound-port', 'inbound-port', 'inbound-ports', 'exclude-inbound-ports',
  'outbound-cidrs', 'exclude-outbound-cidrs', 'exclude-outbound-ports', 'outbound-ports', 'passthrough-source',
].map((k) => [k, { type: 'string' as const }]));

export function iptablesCommand(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  let values;
  try {
    values = parseArgs({ args: argv, options: { ...OPTIONS, 'dry-run': { type: 'boolean' }, remove: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (e) {
    err.write(`meltemi iptables: ${(e as Error).message}\n\n${IPTABLES_HELP}\n`);
    return 2;
  }
  if (values.help) {
    out.write(`${IPTABLES_HELP}\n`);
    return 0;
  }
  let rules: string | undefined;
  try {
    rules = values.remove ? undefined : captureRules(captureOptions(values));
  } catch (e) {
    err.write(`meltemi iptables: ${(e as Error).message}\n`);
    return 2;
  }
  const removal = removalCommands();
  if (values['dry-run']) {
    out.write(`# remove earlier rules (each may fail if absent; a jump rule is deleted until none is left)\n${removal.map((r) => `iptables --wait ${r.join(' ')}`).join('\n')}\n`);
    if (rules) out.write(`# then: iptables-restore --wait --noflush <<EOF\n${rules}EOF\n`);
    return 0;
  }
  // Removing first makes a second run replace the rules rather than add a copy.
  const removed = removeRules(removal);
  if (removed !== undefined) {
    err.write(`meltemi iptables: cannot remove the earlier rules: ${removed} (root or NET_ADMIN needed; Debian: apt-get install iptables)\n`);
    return 1;
  }
  if (!rules) return 0;
  try {
    execFileSync('iptables-restore', ['--wait', '--noflush'], { input: rules, stdio: ['pipe', 'inherit', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    err.write(`meltemi iptables: iptables-restore failed${stderr ? `: ${stderr}` : ''} (root or NET_ADMIN needed; Debian: apt-get install iptables)\n`);
    return 1;
  }
  return 0;
}

/** What iptables says when the rule or chain to remove is not there: nothing to do. */
const ABSENT = /does a matching rule exist|No chain\/target\/match by that name|does(n't| not) exist|Bad rule/i;

/**
 * Runs the removal commands (waiting for the xtables lock). A jump rule is deleted until none is
 * left (concurrent installs may have added it twice). Returns why it failed, or undefined.
 */
function removeRules(commands: readonly string[][]): string | undefined {
  for (const args of commands) {
    for (let n = 0; n < 64; n++) {
      const r = spawnSync('iptables', ['--wait', ...args], { encoding: 'utf8' });
      if (r.error) return `iptables: ${r.error.message}`;
      if (r.status !== 0) {
        if (ABSENT.test(r.stderr)) break;
        return r.stderr.trim() || `iptables ${args.join(' ')} exited ${r.status}`;
      }
      if (args[2] !== '-D') break; // -F and -X act once
    }
  }
  return undefined;
}
