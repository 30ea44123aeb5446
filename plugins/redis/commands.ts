// Command facts the codec needs: which commands carry no key, where the first key sits for the
// few that do not take it as argument 1, and which ones are bound to their connection.

import { Bytes } from "../../sdk/assembly";

const KEYLESS: string[] = [
  "PING", "ECHO", "INFO", "TIME", "DBSIZE", "CONFIG", "COMMAND", "CLIENT", "CLUSTER", "SELECT",
  "AUTH", "HELLO", "QUIT", "RESET", "MULTI", "EXEC", "DISCARD", "UNWATCH", "FLUSHDB", "FLUSHALL",
  "SAVE", "BGSAVE", "BGREWRITEAOF", "LASTSAVE", "SCRIPT", "FUNCTION", "SLOWLOG", "MONITOR",
  "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "PUBLISH",
  "SPUBLISH", "PUBSUB", "SCAN", "RANDOMKEY", "WAIT", "WAITAOF", "READONLY", "READWRITE", "SWAPDB",
  "LATENCY", "MEMORY", "MODULE", "ACL", "ROLE", "SHUTDOWN", "REPLICAOF", "SLAVEOF", "DEBUG", "LOLWUT",
];

/** Commands whose effect or answer depends on the state of their connection. */
const CONNECTION_SCOPED: string[] = [
  "SELECT", "AUTH", "HELLO", "QUIT", "RESET", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH",
  "CLIENT", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
  "MONITOR", "READONLY", "READWRITE", "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN",
  "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF", "SWAPDB",
];

// Lower-cased copies, made once at start-up so lookups allocate nothing.
const keylessLower: string[] = lowerAll(KEYLESS);
const scopedLower: string[] = lowerAll(CONNECTION_SCOPED);

function lowerAll(list: string[]): string[] {
  const outList = new Array<string>(list.length);
  for (let i = 0; i < list.length; i++) outList[i] = list[i].toLowerCase();
  return outList;
}

function listedLower(list: string[], cmd: Bytes, at: i32, len: i32): bool {
  for (let i = 0; i < list.length; i++) {
    if (cmd.equalsLower(at, len, unchecked(list[i]))) return true;
  }
  return false;
}

export function isKeyless(cmd: Bytes, at: i32, len: i32): bool { return listedLower(keylessLower, cmd, at, len); }
export function isConnectionScoped(cmd: Bytes, at: i32, len: i32): bool { return listedLower(scopedLower, cmd, at, len); }

/** EVAL-like commands name their keys after a script and a key count: EVAL script numkeys key… */
export function isScriptCall(cmd: Bytes, at: i32, len: i32): bool {
  return cmd.equalsLower(at, len, "eval") || cmd.equalsLower(at, len, "evalsha")
    || cmd.equalsLower(at, len, "eval_ro") || cmd.equalsLower(at, len, "evalsha_ro")
    || cmd.equalsLower(at, len, "fcall") || cmd.equalsLower(at, len, "fcall_ro");
}

/** XREAD [COUNT n] [BLOCK ms] STREAMS key…: the first key follows STREAMS; BLOCK makes it blocking. */
export function isXread(cmd: Bytes, at: i32, len: i32): bool {
  return cmd.equalsLower(at, len, "xread") || cmd.equalsLower(at, len, "xreadgroup");
}
