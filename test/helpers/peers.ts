// Real peers (servers a suite runs against) that may be missing from a developer's machine: the
// suite skips with the reason, except under MELTEMI_REQUIRE_PEERS (CI), where a missing peer fails.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Skips `suite` unless `command args` runs (a version query); under MELTEMI_REQUIRE_PEERS, throws `install` instead. */
export async function requirePeer(suite: Mocha.Context, command: string, args: string[], install: string): Promise<void> {
  try {
    await run(command, args);
  } catch {
    if (process.env.MELTEMI_REQUIRE_PEERS) throw new Error(`${command} is not installed (${install})`);
    suite.skip();
  }
}
