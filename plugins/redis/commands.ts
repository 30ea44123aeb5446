// Command facts the codec needs — which commands carry no key, which name their keys elsewhere,
// which are bound to their connection — in one open-addressing hash table keyed by the
// lower-cased command, so classifying a command costs one hash and one compare.

import { Bytes } from "../../sdk/assembly";

export const KEYLESS: u8 = 1;
export const CONNECTION_SCOPED: u8 = 2;
/** EVAL-like: `EVAL script numkeys key…`. */
export const SCRIPT: u8 = 4;
/** XREAD/XREADGROUP: the first key follows STREAMS; BLOCK makes the call blocking. */
export const XREAD: u8 = 8;
export const QUIT: u8 = 16;
/** Reads: sending one twice changes nothing, so the proxy may retry it. */
export const READ_ONLY: u8 = 32;
/** Turns the connection into a stream of pushes (pub/sub, MONITOR): not proxied, see describe(). */
export const PUSHES: u8 = 64;
/** Waits on the server as long as the command says (BLPOP key 0): no route timeout applies. */
export const BLOCKS: u8 = 128;

const KEYLESS_NAMES: string[] = [
  "ping", "echo", "info", "time", "dbsize", "config", "command", "client", "cluster", "select",
  "auth", "hello", "quit", "reset", "multi", "exec", "discard", "unwatch", "flushdb", "flushall",
  "save", "bgsave", "bgrewriteaof", "lastsave", "script", "function", "slowlog", "monitor",
  "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "publish",
  "spublish", "pubsub", "scan", "randomkey", "wait", "waitaof", "readonly", "readwrite", "swapdb",
  "latency", "memory", "module", "acl", "role", "shutdown", "replicaof", "slaveof", "debug", "lolwut",
];

/** Commands whose effect or answer depends on the state of their connection. */
const SCOPED_NAMES: string[] = [
  "select", "auth", "hello", "quit", "reset", "multi", "exec", "discard", "watch", "unwatch",
  "client", "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe",
  "monitor", "readonly", "readwrite", "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin",
  "bzpopmax", "bzmpop", "wait", "waitaof", "swapdb",
];

const READ_NAMES: string[] = [
  "get", "mget", "exists", "strlen", "getrange", "substr", "hget", "hmget", "hgetall", "hexists", "hlen",
  "hkeys", "hvals", "hstrlen", "lrange", "llen", "lindex", "lpos", "scard", "smembers", "sismember",
  "smismember", "sintercard", "zrange", "zrangebyscore", "zrangebylex", "zrevrange", "zrevrangebyscore",
  "zrevrangebylex", "zscore", "zmscore", "zcard", "zcount", "zlexcount", "zrank", "zrevrank", "type",
  "ttl", "pttl", "expiretime", "pexpiretime", "xrange", "xrevrange", "xlen", "bitcount", "bitpos",
  "getbit", "geopos", "geodist", "geohash", "ping", "echo", "time", "dbsize", "randomkey", "scan",
  "sscan", "hscan", "zscan", "keys", "touch",
];

const SCRIPT_NAMES: string[] = ["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"];
const XREAD_NAMES: string[] = ["xread", "xreadgroup"];

const SIZE = 256; // power of two, well above the ~100 names
const MASK = SIZE - 1;
const MAX_NAME = 16;
const names = new Array<string>(SIZE).fill("");
const hashes = new StaticArray<u32>(SIZE);
const flags = new StaticArray<u8>(SIZE);

@inline function mix(h: u32, c: u32): u32 { return (h ^ c) * 16777619; }

function hashString(s: string): u32 {
  let h: u32 = 2166136261;
  for (let i = 0; i < s.length; i++) h = mix(h, <u32>s.charCodeAt(i));
  return h;
}

function hashLower(cmd: Bytes, at: i32, len: i32): u32 {
  let h: u32 = 2166136261;
  const p = cmd.ptr + <usize>at;
  for (let i = 0; i < len; i++) {
    let c = <u32>load<u8>(p + <usize>i);
    if (c - 65 < 26) c |= 32;
    h = mix(h, c);
  }
  return h;
}

function insert(list: string[], flag: u8): void {
  for (let n = 0; n < list.length; n++) {
    const name = list[n];
    const h = hashString(name);
    let i = <i32>(h & MASK);
    while (names[i].length > 0 && names[i] != name) i = (i + 1) & MASK;
    names[i] = name;
    unchecked(hashes[i] = h);
    unchecked(flags[i] |= flag);
  }
}

insert(KEYLESS_NAMES, KEYLESS);
insert(SCOPED_NAMES, CONNECTION_SCOPED);
insert(SCRIPT_NAMES, SCRIPT);
insert(XREAD_NAMES, XREAD);
insert(["quit"], QUIT);
insert(READ_NAMES, READ_ONLY);
insert(["subscribe", "psubscribe", "ssubscribe", "monitor"], PUSHES);
insert(["blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop", "wait", "waitaof"], BLOCKS);

/** The flags of the command spelled by bytes [at, at+len) of `cmd`, case-insensitively; 0 if none. */
export function classify(cmd: Bytes, at: i32, len: i32): u8 {
  if (len == 0 || len > MAX_NAME) return 0;
  const h = hashLower(cmd, at, len);
  let i = <i32>(h & MASK);
  while (true) {
    const name = unchecked(names[i]);
    if (name.length == 0) return 0;
    if (unchecked(hashes[i]) == h && cmd.equalsLower(at, len, name)) return unchecked(flags[i]);
    i = (i + 1) & MASK;
  }
}
