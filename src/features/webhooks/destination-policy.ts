// Decides which addresses a webhook may connect to: never this machine or a private network, unless an operator allows it.
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { isWebhookAllowlistEntry } from '../../core/config.js';

/** Answers every address a host name resolves to (injectable, so tests can play a DNS server that changes its mind). */
export type HostResolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export const systemResolver: HostResolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

type Family = 'ipv4' | 'ipv6';

function subnet(network: string, prefix: number, family: Family): BlockList {
  const list = new BlockList();
  list.addSubnet(network, prefix, family);
  return list;
}

/** One list per range, so a refusal can say which kind of address it met. */
function ranges(family: Family, entries: Array<[string, number, string]>): Array<{ name: string; list: BlockList }> {
  return entries.map(([network, prefix, name]) => ({ name, list: subnet(network, prefix, family) }));
}

// IANA's special-purpose registries: nothing here is a receiver on the public internet.
const FORBIDDEN_V4 = ranges('ipv4', [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared (carrier-grade NAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved (IETF protocol assignments)'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved (6to4 relay)'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved (benchmarking)'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['255.255.255.255', 32, 'broadcast'],
  ['240.0.0.0', 4, 'reserved'],
]);

const FORBIDDEN_V6 = ranges('ipv6', [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::ffff:0:0', 96, 'IPv4-mapped'],
  ['::', 96, 'IPv4-compatible'],
  ['64:ff9b:1::', 48, 'reserved (local NAT64)'],
  ['100::', 64, 'reserved (discard)'],
  ['2001::', 23, 'reserved (IETF protocol assignments)'],
  ['2001:db8::', 32, 'documentation'],
  ['fc00::', 7, 'unique-local'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
]);

/** IPv6 prefixes that carry an IPv4 address a gateway forwards to: the embedded address decides. */
const EMBEDDING_V6 = [
  { list: subnet('64:ff9b::', 96, 'ipv6'), name: 'NAT64', at: 6 },
  { list: subnet('2002::', 16, 'ipv6'), name: '6to4', at: 1 },
];

/** The eight 16-bit groups of a valid IPv6 address (a zone or a dotted IPv4 tail allowed). */
function ipv6Groups(address: string): number[] {
  let text = address.split('%')[0] ?? '';
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const split = (part: string) => (part === '' ? [] : part.split(':'));
  const groups = tail === undefined ? split(head) : [...split(head), ...Array<string>(8 - split(head).length - split(tail).length).fill('0'), ...split(tail)];
  return groups.map((group) => parseInt(group, 16));
}

function ipv4At(groups: number[], at: number): string {
  const high = groups[at] ?? 0;
  const low = groups[at + 1] ?? 0;
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** The kind of forbidden range `address` lies in ("loopback", "private", …), or undefined for a public address. */
export function forbiddenRange(address: string): string | undefined {
  const version = isIP(address);
  if (version === 4) return FORBIDDEN_V4.find(({ list }) => list.check(address, 'ipv4'))?.name;
  if (version !== 6) return 'not an IP address';
  const range = FORBIDDEN_V6.find(({ list }) => list.check(address, 'ipv6'))?.name;
  if (range === 'IPv4-mapped') {
    const embedded = forbiddenRange(ipv4At(ipv6Groups(address), 6));
    return embedded ? `IPv4-mapped ${embedded}` : range;
  }
  if (range) return range;
  for (const { list, name, at } of EMBEDDING_V6) {
    if (!list.check(address, 'ipv6')) continue;
    const embedded = forbiddenRange(ipv4At(ipv6Groups(address), at));
    if (embedded) return `${name} of ${embedded}`;
  }
  return undefined;
}

/** An endpoint whose every address passed, and the one address to connect to. */
export interface CheckedDestination {
  url: URL;
  address: string;
  family: 4 | 6;
}

/** A destination the policy will not connect to; `reason` never names the resolved address. */
export class DestinationRefused extends Error {
  constructor(readonly reason: string) {
    super(`destination not allowed: ${reason}`);
    this.name = 'DestinationRefused';
  }
}

/** The host as DNS and the allowlist see it: lower case, no brackets, no trailing dot. */
function bareHost(url: URL): string {
  return url.hostname
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
    .toLowerCase();
}

/**
 * Checks a webhook URL before every connection: each address its host resolves to must be public, or allowed by the
 * operator's allowlist (CIDRs, addresses, or exact host names whose every address is then allowed). The answer names
 * the one address to connect to, so the connection cannot land anywhere the check did not see.
 */
export class DestinationPolicy {
  private readonly allowedV4 = new BlockList();
  private readonly allowedV6 = new BlockList();
  private readonly allowedHosts = new Set<string>();

  constructor(
    allowlist: readonly string[] = [],
    private readonly resolve: HostResolver = systemResolver,
  ) {
    for (const entry of allowlist) {
      if (!isWebhookAllowlistEntry(entry)) throw new Error(`not an address, CIDR or host name: ${entry}`);
      const [address = '', prefix] = entry.split('/');
      const version = isIP(address);
      if (version === 0) this.allowedHosts.add(entry.replace(/\.$/, '').toLowerCase());
      else
        (version === 4 ? this.allowedV4 : this.allowedV6).addSubnet(
          address,
          prefix === undefined ? (version === 4 ? 32 : 128) : Number(prefix),
          version === 4 ? 'ipv4' : 'ipv6',
        );
    }
  }

  /** Resolves and checks `target`; throws DestinationRefused unless every address it has may be reached. */
  async check(target: string | URL): Promise<CheckedDestination> {
    const url = new URL(target);
    const host = bareHost(url);
    const literal = isIP(host);
    let addresses: Array<{ address: string; family: number }>;
    if (literal !== 0) addresses = [{ address: host, family: literal }];
    else {
      try {
        addresses = await this.resolve(host);
      } catch {
        throw new DestinationRefused('its host name does not resolve');
      }
    }
    const [pinned] = addresses;
    if (!pinned) throw new DestinationRefused('its host name does not resolve');
    if (!this.allowedHosts.has(host)) {
      for (const { address } of addresses) {
        const range = forbiddenRange(address);
        if (range && !this.allowsAddress(address))
          throw new DestinationRefused(`${literal ? 'it is' : 'its host name resolves to'} a forbidden address (${range})`);
      }
    }
    return { url, address: pinned.address, family: isIP(pinned.address) === 6 ? 6 : 4 };
  }

  private allowsAddress(address: string): boolean {
    if (isIP(address) === 4) return this.allowedV4.check(address, 'ipv4');
    const groups = ipv6Groups(address);
    // An IPv4-mapped address reaches its IPv4 address, so the IPv4 entries decide it.
    const mapped = groups.slice(0, 6).join(',') === '0,0,0,0,0,65535';
    return mapped ? this.allowedV4.check(ipv4At(groups, 6), 'ipv4') : this.allowedV6.check(address, 'ipv6');
  }
}
