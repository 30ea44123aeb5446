// Where a redirected connection was going. iptables REDIRECT rewrites the destination to the
// proxy's capture port and keeps the original in the connection-tracking entry; only
// getsockopt(SO_ORIGINAL_DST) reads it, and Node has no binding for it, so a small Node-API addon
// built from runtime/native/original-dst.c does (docs/sidecar.md weighs the alternatives).

import { createRequire } from 'node:module';
import { join } from 'node:path';
import type net from 'node:net';
import { MeltemiError } from '../core/errors';

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
}

interface Addon {
  originalDestination(fd: number): { address: string; port: number; family: number };
}

/** build/native/original-dst.node, from build/runtime/sidecar/. */
const ADDON_PATH = join(__dirname, '..', '..', 'native', 'original-dst.node');

let addon: Addon | undefined;
let loadError: Error | undefined;

/** Loads the addon, or throws MELTEMI_CAPTURE_UNAVAILABLE saying how to get it. */
export function requireOriginalDestination(): void {
  if (addon) return;
  if (!loadError) {
    try {
      addon = createRequire(__filename)(ADDON_PATH) as Addon;
      return;
    } catch (err) {
      loadError = err as Error;
    }
  }
  throw new MeltemiError('MELTEMI_CAPTURE_UNAVAILABLE',
    `transparent capture needs the original-destination addon (${ADDON_PATH}): ${loadError.message.split('\n')[0]}; build it with "node scripts/build-native.mjs" (a C compiler and Node's headers)`,
    { cause: loadError });
}

/**
 * The original destination of `socket`, or undefined when it was not redirected (it was dialled
 * at the capture port itself) or is already closed. requireOriginalDestination() must have
 * succeeded.
 */
export function originalDestination(socket: net.Socket): OriginalDestination | undefined {
  // The descriptor of a TCP handle (libuv's, on Unix); absent once the socket is destroyed.
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0 || !addon) return undefined;
  try {
    const dst = addon.originalDestination(fd);
    return { address: dst.address, port: dst.port };
  } catch {
    return undefined;
  }
}
