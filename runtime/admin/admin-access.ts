// Who may do what on the admin port. Reads (/metrics, /ready, /config_dump, /plugins) are open
// to whoever reaches the port, as Envoy's are; the port binds loopback by default. Changes
// (POST /plugins/reload) need proof: the request came over the admin Unix socket (file
// permissions decide), or it carries the bearer token from admin.token_file. A browser cannot
// forge either: it cannot reach a Unix socket, and an Authorization header makes a cross-origin
// request non-simple, which needs a CORS preflight the admin never grants. Every request must
// also name a Host that is a loopback name, an IP literal, or one listed in admin.allowed_hosts,
// so a page on a rebound DNS name cannot read the admin port through the victim's browser.

import { readRegularFile } from '../core/bounded-file';
import { MeltemiError } from '../core/errors';

import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** Whether binding `address` keeps the admin port to this machine. */
export function isLoopbackAddress(address: string): boolean {
  if (address === 'localhost') return true;
  if (isIP(address) === 4) return address.startsWith('127.');
  return address === '::1' || address === '0:0:0:0:0:0:0:1';
}

/** Whether `host` (a Host header, port included) may address the admin server. */
export function hostAllowed(host: string | undefined, allowed: readonly string[]): boolean {
  if (host === undefined) return true; // HTTP/1.0 clients; browsers always send Host
  const name = hostName(host).toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) !== 0) return true; // DNS rebinding needs a name; an address literal is not one
  return allowed.some((a) => a.toLowerCase() === name);
}

function hostName(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']') >= 0 ? host.indexOf(']') : undefined);
  const colon = host.lastIndexOf(':');
  return colon >= 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

/** Compares a request's `Authorization` header with `Bearer <token>` in constant time. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header || !header.startsWith('Bearer ')) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(header.slice(7).trim()), digest(token));
}

/** The admin token: a regular file of at most 4 KiB, trimmed, at least 16 characters. */
export async function readAdminToken(file: string): Promise<string> {
  let token: string;
  try {
    token = (await readRegularFile(file, 4096)).toString('utf8').trim();
  } catch (err) {
    throw new MeltemiError('MELTEMI_CONFIG_INVALID', `admin.token_file: ${(err as Error).message}`);
  }
  if (token.length < 16) throw new MeltemiError('MELTEMI_CONFIG_INVALID', `admin.token_file: ${file} holds ${token.length} characters; a token needs at least 16`);
  return token;
}
