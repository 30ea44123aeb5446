// Numeric constants of ABI v1. sdk/ABI.md is normative; runtime/wasm/abi.ts mirrors this file
// and test/abi-conformance.test.ts keeps the two equal.

export const ABI_MINOR: i32 = 3;

// Status codes (ABI.md §7).
export const STATUS_OK: i32 = 0;
export const STATUS_UNCHANGED: i32 = 1;
export const STATUS_PROTOCOL_ERROR: i32 = -1;
export const STATUS_FRAME_TOO_LARGE: i32 = -2;
export const STATUS_BAD_ARGUMENT: i32 = -3;
export const STATUS_UNSUPPORTED: i32 = -4;
export const STATUS_OUT_OF_MEMORY: i32 = -5;
export const STATUS_UNKNOWN_CONTEXT: i32 = -6;
export const STATUS_INTERNAL: i32 = -7;

// Message types (ABI.md §6.1, Aeraki's numbering).
export const MSG_REQUEST: u8 = 0;
export const MSG_RESPONSE: u8 = 1;
export const MSG_ONEWAY: u8 = 2;
export const MSG_STREAM_INIT: u8 = 3;
export const MSG_STREAM_DATA: u8 = 4;
export const MSG_STREAM_CLOSE_ONE_WAY: u8 = 5;
export const MSG_STREAM_CLOSE_TWO_WAY: u8 = 6;
export const MSG_HEARTBEAT: u8 = 7;
export const MSG_ERROR: u8 = 8;

export const RESPONSE_OK: u8 = 0;
export const RESPONSE_ERROR: u8 = 1;

// Frame flags.
export const FRAME_END_STREAM: u16 = 1;
export const FRAME_DRAIN_CLOSE: u16 = 2;
export const FRAME_HAS_REQUEST_ID: u16 = 4;
export const FRAME_CONNECTION_SCOPED: u16 = 8;
/** ABI 1.1: sending the request twice has the effect of sending it once (reads); the host may retry it. */
export const FRAME_IDEMPOTENT: u16 = 16;
/** ABI 1.1: the server may hold the answer as long as the request says (BLPOP 0): the host applies no route timeout. */
export const FRAME_BLOCKING: u16 = 32;
/** ABI 1.2: a server message answering no request (a greeting, an event): relayed on a bound session. */
export const FRAME_UNSOLICITED: u16 = 64;
/** ABI 1.2: part of a response; more of it follows (the host streams it to the client at once). */
export const FRAME_PARTIAL: u16 = 128;
/** ABI 1.2: this request carries the session's routing metadata (a login): a bound session is routed on it. */
export const FRAME_ROUTE: u16 = 256;
/** ABI 1.2: the codec rewrote this frame's bytes in the input (same length); the host forwards them. */
export const FRAME_REWRITTEN: u16 = 512;
/** ABI 1.2: the client's answer in a rebind; the host passes it to `Codec.rebind`. */
export const FRAME_REBIND: u16 = 1024;

// Call flags.
export const SIDE_UPSTREAM: i32 = 1;
export const DECODE_END_OF_STREAM: i32 = 2;
export const ENCODE_SIDE_UPSTREAM: i32 = 0x100;
/** meltemi_rebind flags (ABI 1.2): the call carries the client's answer. */
export const REBIND_CLIENT_ANSWER: i32 = 1;
/** ABI 1.2: number of session words (control block offsets 40..63). */
export const SESSION_WORDS: i32 = 6;

// Mutation ops (ABI.md §6.2).
export const OP_SET: u8 = 1;
export const OP_APPEND: u8 = 2;
export const OP_DELETE: u8 = 3;
export const OP_SET_REQUEST_ID: u8 = 4;

// Local-reply error kinds (ABI.md §7; 0-5 are Aeraki's ErrorType).
export const ERR_ROUTE_NOT_FOUND: i32 = 0;
export const ERR_CLUSTER_NOT_FOUND: i32 = 1;
export const ERR_NO_HEALTHY_UPSTREAM: i32 = 2;
export const ERR_BAD_RESPONSE: i32 = 3;
export const ERR_UNSPECIFIED: i32 = 4;
export const ERR_OVER_LIMIT: i32 = 5;
export const ERR_CONNECT_FAILURE: i32 = 6;
export const ERR_UPSTREAM_CLOSED: i32 = 7;
export const ERR_TIMEOUT: i32 = 8;
export const ERR_PROTOCOL_ERROR: i32 = 9;
export const ERR_PERMISSION_DENIED: i32 = 10; // ABI 1.1

// Log levels for meltemi.log.
export const LOG_TRACE: i32 = 0;
export const LOG_DEBUG: i32 = 1;
export const LOG_INFO: i32 = 2;
export const LOG_WARN: i32 = 3;
export const LOG_ERROR: i32 = 4;

// Layout sizes.
export const CTRL_SIZE: i32 = 64;
export const RECORD_HEADER_SIZE: i32 = 40;
export const ENTRY_SIZE: i32 = 20;
export const MUTATION_HEADER_SIZE: i32 = 8;
export const MUTATION_OP_HEADER_SIZE: i32 = 12;

// Filter actions (ABI-1.1.md §2).
export const FILTER_CONTINUE: i32 = 0;
export const FILTER_PAUSE: i32 = 1;
export const FILTER_LOCAL_REPLY: i32 = 2;
export const FILTER_ABORT: i32 = 3;

// Metric kinds (ABI-1.1.md §3).
export const METRIC_COUNTER: i32 = 0;
export const METRIC_GAUGE: i32 = 1;
export const METRIC_HISTOGRAM: i32 = 2;
