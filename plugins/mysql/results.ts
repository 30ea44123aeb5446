// What the server sends back, packet by packet: where a response ends depends on the command it
// answers (the request's `expect`) and, inside a result set, on how far it got (session state).
// A text or binary result set: column count, column definitions, [EOF], rows, EOF/OK (or ERR);
// with SERVER_MORE_RESULTS_EXISTS another result follows. A prepared statement's answer: OK,
// parameter definitions, [EOF], column definitions, [EOF].

import { Bytes } from "../../sdk/assembly";
import { lenenc, lenencSize, payloadLength, MAX_PAYLOAD } from "./packets";
import {
  FLAG_DEPRECATE_EOF, RS_COLUMNS, RS_COLUMNS_EOF, RS_FIRST, RS_PARAMS, RS_PARAMS_EOF, RS_PREPARED_COLUMNS, RS_PREPARED_COLUMNS_EOF, RS_ROWS,
  flags, preparedColumns, remaining, rs, setPreparedColumns, setRemaining, setRs,
} from "./session";

// What a request expects back (Frame.expect).
export const EXPECT_NONE: u32 = 0;
export const EXPECT_AUTH: u32 = 1;
/** One packet: OK, ERR or EOF. */
export const EXPECT_SIMPLE: u32 = 2;
export const EXPECT_TEXT_RESULT: u32 = 3;
export const EXPECT_BINARY_RESULT: u32 = 4;
export const EXPECT_PREPARE: u32 = 5;
export const EXPECT_FIELD_LIST: u32 = 6;
/** One packet of text (COM_STATISTICS). */
export const EXPECT_STRING: u32 = 7;
export const EXPECT_FETCH: u32 = 8;
export const EXPECT_STREAM: u32 = 9;

// Outcome of one server packet.
export const STEP_MORE: i32 = 0;
export const STEP_DONE: i32 = 1;
export const STEP_ERROR_DONE: i32 = 2;
/** LOCAL INFILE: the client must now send a file. */
export const STEP_INFILE: i32 = 3;
export const STEP_BAD: i32 = -1;

const SERVER_MORE_RESULTS_EXISTS: i32 = 8;
const SERVER_STATUS_CURSOR_EXISTS: i32 = 64;

export let stepError: string = "";

/** An EOF packet, or with DEPRECATE_EOF the OK that replaces it (0xFE, shorter than a row can be). */
@inline function isEnd(b: Bytes, at: i32, len: i32): bool {
  if (b.at(at + 4) != 0xfe) return false;
  return (flags() & FLAG_DEPRECATE_EOF) != 0 ? len < MAX_PAYLOAD : len < 9;
}

/** Status flags of an EOF packet or of an OK packet at `at`; -1 when unreadable. */
function statusOf(b: Bytes, at: i32, len: i32): i32 {
  const end = at + 4 + len;
  if (len >= 1 && len < 9 && b.at(at + 4) == 0xfe) {
    // EOF: 0xFE, warnings(2), status(2)
    return len >= 5 ? <i32>b.at(at + 7) | (<i32>b.at(at + 8) << 8) : 0;
  }
  // OK (0x00 or 0xFE): header, affected rows, last insert id, status(2)
  let p = at + 5;
  const rows = lenenc(b, p, end);
  if (rows < 0) return -1;
  p += lenencSize;
  const id = lenenc(b, p, end);
  if (id < 0) return -1;
  p += lenencSize;
  return p + 2 <= end ? <i32>b.at(p) | (<i32>b.at(p + 1) << 8) : 0;
}

/** After an OK or EOF that ends a result: more results follow, or the response is done. */
function endOfResult(b: Bytes, at: i32, len: i32): i32 {
  const status = statusOf(b, at, len);
  if (status < 0) { stepError = "malformed OK packet"; return STEP_BAD; }
  setRs(RS_FIRST);
  return (status & SERVER_MORE_RESULTS_EXISTS) != 0 ? STEP_MORE : STEP_DONE;
}

/** Counts one definition packet of `next`-bound state; moves on when the count is reached. */
function definition(afterDefs: u8, afterEof: u8): i32 {
  const left = remaining() - 1;
  setRemaining(left);
  if (left == 0) setRs((flags() & FLAG_DEPRECATE_EOF) != 0 ? afterEof : afterDefs);
  return STEP_MORE;
}

/** One server packet at [at, at+4+len) of a response to a request that expects `expect`. */
export function step(b: Bytes, at: i32, expect: u32): i32 {
  const len = payloadLength(b, at);
  if (len == 0) { stepError = "empty server packet"; return STEP_BAD; }
  const first = b.at(at + 4);
  const state = rs();
  if (state == RS_FIRST && first == 0xff) return STEP_ERROR_DONE;
  switch (expect) {
    case EXPECT_SIMPLE:
    case EXPECT_STRING:
      return STEP_DONE;
    case EXPECT_STREAM:
      if (first == 0xff) return STEP_ERROR_DONE;
      return first == 0xfe && len < 9 ? STEP_DONE : STEP_MORE;
    case EXPECT_FIELD_LIST:
      if (first == 0xff) return STEP_ERROR_DONE;
      return isEnd(b, at, len) ? STEP_DONE : STEP_MORE;
    case EXPECT_PREPARE:
      return prepared(b, at, len, first, state);
    case EXPECT_FETCH:
      if (first == 0xff) return STEP_ERROR_DONE;
      if (isEnd(b, at, len)) return endOfResult(b, at, len);
      return STEP_MORE;
    case EXPECT_TEXT_RESULT:
    case EXPECT_BINARY_RESULT:
      return result(b, at, len, first, state, expect);
  }
  // Nothing expected (or an unknown word): take one packet as the whole answer.
  return first == 0xff ? STEP_ERROR_DONE : STEP_DONE;
}

function result(b: Bytes, at: i32, len: i32, first: u8, state: u8, expect: u32): i32 {
  if (state == RS_FIRST) {
    if (first == 0x00) return endOfResult(b, at, len);
    if (first == 0xfb && expect == EXPECT_TEXT_RESULT) return STEP_INFILE;
    const n = lenenc(b, at + 4, at + 4 + len);
    if (n <= 0 || n > 4096) { stepError = "bad column count"; return STEP_BAD; }
    setRemaining(<u32>n);
    setRs(RS_COLUMNS);
    return STEP_MORE;
  }
  if (first == 0xff) { setRs(RS_FIRST); return STEP_ERROR_DONE; }
  if (state == RS_COLUMNS) return definition(RS_COLUMNS_EOF, RS_ROWS);
  if (state == RS_COLUMNS_EOF) {
    if (first != 0xfe) { stepError = "expected EOF after column definitions"; return STEP_BAD; }
    // A statement executed with a cursor answers with its columns only; rows come with FETCH.
    const status = statusOf(b, at, len);
    if (expect == EXPECT_BINARY_RESULT && status >= 0 && (status & SERVER_STATUS_CURSOR_EXISTS) != 0) { setRs(RS_FIRST); return STEP_DONE; }
    setRs(RS_ROWS);
    return STEP_MORE;
  }
  if (state == RS_ROWS) return isEnd(b, at, len) ? endOfResult(b, at, len) : STEP_MORE;
  stepError = "result set in an impossible state";
  return STEP_BAD;
}

function prepared(b: Bytes, at: i32, len: i32, first: u8, state: u8): i32 {
  if (state == RS_FIRST) {
    if (first != 0x00 || len < 12) { stepError = "bad COM_STMT_PREPARE answer"; return STEP_BAD; }
    const columns = <u32>b.at(at + 9) | (<u32>b.at(at + 10) << 8);
    const params = <u32>b.at(at + 11) | (<u32>b.at(at + 12) << 8);
    setPreparedColumns(columns);
    if (params > 0) { setRemaining(params); setRs(RS_PARAMS); return STEP_MORE; }
    if (columns > 0) { setRemaining(columns); setRs(RS_PREPARED_COLUMNS); return STEP_MORE; }
    return STEP_DONE;
  }
  if (state == RS_PARAMS) {
    definition(RS_PARAMS_EOF, RS_PARAMS_EOF);
    if (rs() == RS_PARAMS_EOF && (flags() & FLAG_DEPRECATE_EOF) != 0) return afterParams();
    return STEP_MORE;
  }
  if (state == RS_PARAMS_EOF) return afterParams();
  if (state == RS_PREPARED_COLUMNS) {
    definition(RS_PREPARED_COLUMNS_EOF, RS_PREPARED_COLUMNS_EOF);
    if (rs() == RS_PREPARED_COLUMNS_EOF && (flags() & FLAG_DEPRECATE_EOF) != 0) { setRs(RS_FIRST); return STEP_DONE; }
    return STEP_MORE;
  }
  if (state == RS_PREPARED_COLUMNS_EOF) { setRs(RS_FIRST); return STEP_DONE; }
  stepError = "prepared statement answer in an impossible state";
  return STEP_BAD;
}

function afterParams(): i32 {
  const columns = preparedColumns();
  if (columns > 0) { setRemaining(columns); setRs(RS_PREPARED_COLUMNS); return STEP_MORE; }
  setRs(RS_FIRST);
  return STEP_DONE;
}
