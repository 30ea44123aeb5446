// ZooKeeper's request opcodes (ZooDefs.OpCode), their names as `command` metadata, and which of
// them carry a path as their first field.

const NAMES: string[] = [
  "notification", "create", "delete", "exists", "getData", "setData", "getACL", "setACL", "getChildren", "sync",
  "unknown", "ping", "getChildren2", "check", "multi", "create2", "reconfig", "checkWatches", "removeWatches",
  "createContainer", "deleteContainer", "createTTL", "multiRead",
];
const HIGH_NAMES: string[] = ["auth", "setWatches", "sasl", "getEphemerals", "getAllChildrenNumber", "setWatches2", "addWatch", "whoAmI"];

export const OP_MULTI = 14;
export const OP_MULTI_READ = 22;
export const OP_AUTH = 100;
export const OP_CREATE_SESSION = -10;
export const OP_CLOSE_SESSION = -11;

export function opName(op: i32): string {
  if (op >= 0 && op < NAMES.length && op != 10) return unchecked(NAMES[op]);
  if (op >= 100 && op < 100 + HIGH_NAMES.length) return unchecked(HIGH_NAMES[op - 100]);
  if (op == OP_CREATE_SESSION) return "createSession";
  if (op == OP_CLOSE_SESSION) return "closeSession";
  return "unknown";
}

/** Whether the request body of `op` begins with a path string. */
export function hasPath(op: i32): bool {
  return (op >= 1 && op <= 9) || op == 12 || op == 13 || op == 15 || (op >= 17 && op <= 21) || op == 103 || op == 104 || op == 106;
}
