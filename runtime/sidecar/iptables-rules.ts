// The capture rules of a sidecar, in the spirit of istio-iptables: outbound TCP to the virtual
// outbound port, inbound TCP to the virtual inbound port, the proxy's own UID/GID exempt, with
// include/exclude lists. Built as iptables-restore input for the nat table, applied in one go.

import net from 'node:net';

export interface CaptureRuleOptions {
  readonly proxyUid: number;
  readonly proxyGid: number;
  readonly outboundPort: number;
  readonly inboundPort: number;
  /** Inbound ports captured: '*' for all, or a list; empty: no inbound capture. */
  readonly inboundPorts: '*' | readonly number[];
  readonly excludeInboundPorts: readonly number[];
  /** Outbound destinations captured: '*' for all, or a list of CIDRs; empty: no outbound capture. */
  readonly outboundCidrs: '*' | readonly string[];
  readonly excludeOutboundCidrs: readonly string[];
  readonly excludeOutboundPorts: readonly number[];
  /** Only these destination ports are captured outbound (empty: every port); beside Istio, the meta-protocol ports. */
  readonly outboundPorts: readonly number[];
  /** Source address of the proxy's inbound pass-through connections, let through on loopback. */
  readonly passthroughSource: string;
}

/** Istio's defaults: UID/GID 1337, 15001/15006, its own ports kept out of inbound capture. */
export const CAPTURE_RULE_DEFAULTS: CaptureRuleOptions = {
  proxyUid: 1337,
  proxyGid: 1337,
  outboundPort: 15001,
  inboundPort: 15006,
  inboundPorts: '*',
  excludeInboundPorts: [15020, 15021, 15090],
  outboundCidrs: '*',
  excludeOutboundCidrs: [],
  excludeOutboundPorts: [],
  outboundPorts: [],
  passthroughSource: '127.0.0.6',
};

export const CHAINS = ['MELTEMI_INBOUND', 'MELTEMI_IN_REDIRECT', 'MELTEMI_OUTPUT', 'MELTEMI_REDIRECT'] as const;
/** The rules that send traffic into meltemi's chains: the only ones outside them. */
export const JUMPS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['PREROUTING', ['-p', 'tcp', '-j', 'MELTEMI_INBOUND']],
  ['OUTPUT', ['-p', 'tcp', '-j', 'MELTEMI_OUTPUT']],
];

/** iptables-restore input (nat table, --noflush) installing the capture. */
export function captureRules(o: CaptureRuleOptions): string {
  const lines = ['*nat', ...CHAINS.map((c) => `:${c} - [0:0]`)];
  const add = (rule: string) => lines.push(`-A ${rule}`);
  add(`MELTEMI_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${o.inboundPort}`);
  add(`MELTEMI_REDIRECT -p tcp -j REDIRECT --to-ports ${o.outboundPort}`);
  const inbound = o.inboundPorts === '*' || o.inboundPorts.length > 0;
  if (inbound) {
    add(`PREROUTING ${JUMPS[0][1].join(' ')}`);
    // The capture port itself, dialled from outside, is never redirected to itself.
    for (const port of [o.inboundPort, ...o.excludeInboundPorts]) add(`MELTEMI_INBOUND -p tcp --dport ${port} -j RETURN`);
    if (o.inboundPorts === '*') add('MELTEMI_INBOUND -p tcp -j MELTEMI_IN_REDIRECT');
    else for (const port of o.inboundPorts) add(`MELTEMI_INBOUND -p tcp --dport ${port} -j MELTEMI_IN_REDIRECT`);
  }
  const outbound = o.outboundCidrs === '*' || o.outboundCidrs.length > 0;
  if (outbound || inbound) {
    add(`OUTPUT ${JUMPS[1][1].join(' ')}`);
    // Inbound pass-through leaves the proxy from this address to the application on loopback.
    add(`MELTEMI_OUTPUT -s ${o.passthroughSource}/32 -o lo -j RETURN`);
    for (const [flag, id] of [['--uid-owner', o.proxyUid], ['--gid-owner', o.proxyGid]] as const) {
      // The proxy calling this pod's own address (a service of this pod, dialled by its VIP) is inbound traffic.
      if (inbound) add(`MELTEMI_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner ${flag} ${id} -j MELTEMI_IN_REDIRECT`);
      // The application on loopback is not captured; the proxy's own traffic never is (no loop).
      add(`MELTEMI_OUTPUT -o lo -m owner ! ${flag} ${id} -j RETURN`);
      add(`MELTEMI_OUTPUT -m owner ${flag} ${id} -j RETURN`);
    }
    add('MELTEMI_OUTPUT -d 127.0.0.1/32 -j RETURN');
    if (outbound) {
      for (const port of o.excludeOutboundPorts) add(`MELTEMI_OUTPUT -p tcp --dport ${port} -j RETURN`);
      for (const cidr of o.excludeOutboundCidrs) add(`MELTEMI_OUTPUT -d ${cidr} -j RETURN`);
      const ports = o.outboundPorts.length > 0 ? o.outboundPorts.map((p) => `-p tcp --dport ${p} `) : [''];
      for (const port of ports) {
        if (o.outboundCidrs === '*') add(`MELTEMI_OUTPUT ${port}-j MELTEMI_REDIRECT`);
        else for (const cidr of o.outboundCidrs) add(`MELTEMI_OUTPUT ${port}-d ${cidr} -j MELTEMI_REDIRECT`);
      }
    }
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The iptables commands (argument lists) that remove the capture; each may fail when already gone. */
export function removalCommands(): string[][] {
  return [
    ...JUMPS.map(([chain, rule]) => ['-t', 'nat', '-D', chain, ...rule]),
    ...CHAINS.map((c) => ['-t', 'nat', '-F', c]),
    ...CHAINS.map((c) => ['-t', 'nat', '-X', c]),
  ];
}

// ---- parsing command-line values: everything here ends up in rules, so nothing unchecked does ----

export function parsePort(text: string, what: string): number {
  if (!/^[1-9][0-9]{0,4}$/.test(text) || Number(text) > 65535) throw new Error(`${what}: "${text}" is not a port (1-65535)`);
  return Number(text);
}

export function parseId(text: string, what: string): number {
  if (!/^(0|[1-9][0-9]{0,9})$/.test(text) || Number(text) > 2 ** 32 - 2) throw new Error(`${what}: "${text}" is not a user or group id`);
  return Number(text);
}

/** A comma-separated port list; '' is empty. */
export function parsePorts(text: string, what: string): number[] {
  return text.trim() === '' ? [] : text.split(',').map((p) => parsePort(p.trim(), what));
}

/** An IPv4 CIDR (an address alone is /32), canonical text. */
export function parseCidr(text: string, what: string): string {
  const m = /^([0-9.]+)(?:\/([0-9]{1,2}))?$/.exec(text.trim());
  if (!m || net.isIPv4(m[1]) === false || (m[2] !== undefined && Number(m[2]) > 32)) throw new Error(`${what}: "${text}" is not an IPv4 address or CIDR`);
  return `${m[1]}/${m[2] ?? 32}`;
}

export function parseCidrs(text: string, what: string): string[] {
  return text.trim() === '' ? [] : text.split(',').map((c) => parseCidr(c, what));
}
