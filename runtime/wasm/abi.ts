// Host-side constants of ABI v1 (sdk/ABI.md). sdk/assembly/abi.ts is the guest mirror; the
// conformance test compares the two files.

export const ABI_MAJOR = 1;
export const ABI_MINOR = 3;
export const ABI_MARKER = 'meltemi_abi_v1';

export const Status = {
  OK: 0,
  UNCHANGED: 1,
  PROTOCOL_ERROR: -1,
  FRAME_TOO_LARGE: -2,
  BAD_ARGUMENT: -3,
  UNSUPPORTED: -4,
  OUT_OF_MEMORY: -5,
  UNKNOWN_CONTEXT: -6,
  INTERNAL: -7,
} as const;

export const MessageType = {
  REQUEST: 0,
  RESPONSE: 1,
  ONEWAY: 2,
  STREAM_INIT: 3,
  STREAM_DATA: 4,
  STREAM_CLOSE_ONE_WAY: 5,
  STREAM_CLOSE_TWO_WAY: 6,
  HEARTBEAT: 7,
  ERROR: 8,
} as const;
export type MessageTypeValue = (typeof MessageType)[keyof typeof MessageType];

export const MESSAGE_TYPE_NAMES = [
  'request', 'response', 'oneway', 'stream_init', 'stream_data', 'stream_close_one_way',
  'stream_close_two_way', 'heartbeat', 'error',
] as const;

export const ResponseStatus = { OK: 0, ERROR: 1 } as const;

export const FrameFlag = {
  END_STREAM: 1,
  DRAIN_CLOSE: 2,
  HAS_REQUEST_ID: 4,
  CONNECTION_SCOPED: 8,
  /** ABI 1.1: safe to send twice (reads): the router may retry it. */
  IDEMPOTENT: 16,
  /** ABI 1.1: the server may hold the answer as long as the request says (Redis BLPOP): no route timeout. */
  BLOCKING: 32,
  /** ABI 1.2: a server message answering no request (a greeting, a watch event): relayed on a bound session. */
  UNSOLICITED: 64,
  /** ABI 1.2: a piece of a response; more of the same response follows (streamed to the client at once). */
  PARTIAL: 128,
  /** ABI 1.2: this request carries the session's routing metadata (a login): a bound session is routed on it. */
  ROUTE: 256,
  /** ABI 1.2: the codec rewrote this frame's bytes in IN (same length); the host forwards them from there. */
  REWRITTEN: 512,
  /** ABI 1.2: the client's answer in a rebind (meltemi_rebind's second step). */
  REBIND: 1024,
} as const;

export const CallFlag = {
  SIDE_UPSTREAM: 1,
  DECODE_END_OF_STREAM: 2,
  ENCODE_SIDE_UPSTREAM: 0x100,
} as const;

export const MutationOp = { SET: 1, APPEND: 2, DELETE: 3, SET_REQUEST_ID: 4 } as const;
export type MutationOpValue = (typeof MutationOp)[keyof typeof MutationOp];

/** Local-reply error kinds; 0-5 are Aeraki's ErrorType. */
export const ErrorKind = {
  ROUTE_NOT_FOUND: 0,
  CLUSTER_NOT_FOUND: 1,
  NO_HEALTHY_UPSTREAM: 2,
  BAD_RESPONSE: 3,
  UNSPECIFIED: 4,
  OVER_LIMIT: 5,
  CONNECT_FAILURE: 6,
  UPSTREAM_CLOSED: 7,
  TIMEOUT: 8,
  PROTOCOL_ERROR: 9,
  /** ABI 1.1: a filter refused the request (authorization). */
  PERMISSION_DENIED: 10,
} as const;
export type ErrorKindValue = (typeof ErrorKind)[keyof typeof ErrorKind];

export const LogLevelCode = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 } as const;

export const Layout = {
  CTRL_SIZE: 64,
  RECORD_HEADER_SIZE: 40,
  ENTRY_SIZE: 20,
  MUTATION_HEADER_SIZE: 8,
  MUTATION_OP_HEADER_SIZE: 12,
} as const;

/** Control block field offsets (ABI.md §3). */
export const Ctrl = {
  IN_PTR: 0,
  IN_CAP: 4,
  OUT_PTR: 8,
  OUT_LEN: 12,
  CONSUMED: 16,
  FRAME_COUNT: 20,
  NEED: 24,
  ERR_OFF: 28,
  ERR_LEN: 32,
  /** ABI 1.2, bound sessions: the `expect` word of the request the next response answers (upstream decode). */
  EXPECT: 36,
  /** ABI 1.2, bound sessions: the session words, owned by the host, read and written by every call. */
  SESSION: 40,
} as const;

/** ABI 1.2: how many 32-bit session words a bound session has (control block 40..63). */
export const SESSION_WORDS = 6;

export const EntryFlag = { INLINE_KEY: 1, INLINE_VALUE: 2 } as const;

export const CODEC_EXPORTS: ReadonlyArray<readonly [name: string, arity: number]> = [
  ['meltemi_ctrl', 0],
  ['meltemi_info', 0],
  ['meltemi_in_reserve', 1],
  ['meltemi_context_new', 3],
  ['meltemi_context_free', 1],
  ['meltemi_decode', 3],
  ['meltemi_encode', 4],
  ['meltemi_local_reply', 5],
  ['meltemi_heartbeat_reply', 3],
];

/** ABI 1.2: optional codec export, moving a session's login to another upstream (ABI-1.2.md §3). */
export const REBIND_EXPORT = ['meltemi_rebind', 5] as const;
/** meltemi_rebind flags: the call carries the client's answer (second step). */
export const RebindFlag = { CLIENT_ANSWER: 1 } as const;

/** Filter exports of ABI 1.1 (ABI-1.1.md §2). */
export const FILTER_EXPORTS: ReadonlyArray<readonly [name: string, arity: number]> = [
  ['meltemi_ctrl', 0],
  ['meltemi_info', 0],
  ['meltemi_in_reserve', 1],
  ['meltemi_root_new', 2],
  ['meltemi_root_free', 1],
  ['meltemi_on_request', 3],
  ['meltemi_on_response', 3],
  ['meltemi_on_timer', 3],
  ['meltemi_on_done', 2],
];

/** What a filter call returns (ABI-1.1.md §2); the values of FilterStatus. */
export const FilterAction = { CONTINUE: 0, PAUSE: 1, LOCAL_REPLY: 2, ABORT: 3 } as const;

/** Metric kinds of meltemi.metric_define (ABI-1.1.md §3). */
export const MetricKind = { COUNTER: 0, GAUGE: 1, HISTOGRAM: 2 } as const;

export function align8(n: number): number {
  return (n + 7) & ~7;
}
