// The MySQL session's state, kept in the host's session words (ABI 1.2) so that a trap or a new
// instance of the codec loses none of it. Bytes 0..3 and words 1..4.

import { Session } from "../../sdk/assembly";

/** Where the connection is: what the next client packet is, and how to read the server's. */
export const PHASE_GREETING: u8 = 0;
export const PHASE_LOGIN: u8 = 1;
export const PHASE_AUTH: u8 = 2;
export const PHASE_COMMAND: u8 = 3;
/** The server asked for a file (LOCAL INFILE): the client sends it, then an empty packet. */
export const PHASE_INFILE: u8 = 4;
/** The login moved to another server; the client's next packet is its answer to our auth switch. */
export const PHASE_REBIND: u8 = 5;

// Where a streamed response is (upstream).
export const RS_FIRST: u8 = 0;
export const RS_COLUMNS: u8 = 1;
export const RS_COLUMNS_EOF: u8 = 2;
export const RS_ROWS: u8 = 3;
export const RS_PARAMS: u8 = 4;
export const RS_PARAMS_EOF: u8 = 5;
export const RS_PREPARED_COLUMNS: u8 = 6;
export const RS_PREPARED_COLUMNS_EOF: u8 = 7;

export const FLAG_DEPRECATE_EOF: u8 = 1;

const B_PHASE = 0, B_DELTA = 1, B_RS = 2, B_FLAGS = 3;
const W_CLIENT_CAPS = 1, W_SERVER_CAPS = 2, W_REMAINING = 3, W_PREPARED_COLUMNS = 4;

@inline export function phase(): u8 { return Session.byte(B_PHASE); }
@inline export function setPhase(p: u8): void { Session.setByte(B_PHASE, p); }
/** Sequence offset between the client's numbering and the server's, after a rebind (auth only). */
@inline export function delta(): u8 { return Session.byte(B_DELTA); }
@inline export function setDelta(d: u8): void { Session.setByte(B_DELTA, d); }
@inline export function rs(): u8 { return Session.byte(B_RS); }
@inline export function setRs(s: u8): void { Session.setByte(B_RS, s); }
@inline export function flags(): u8 { return Session.byte(B_FLAGS); }
@inline export function setFlags(f: u8): void { Session.setByte(B_FLAGS, f); }
@inline export function clientCaps(): u32 { return Session.word(W_CLIENT_CAPS); }
@inline export function setClientCaps(c: u32): void { Session.setWord(W_CLIENT_CAPS, c); }
@inline export function serverCaps(): u32 { return Session.word(W_SERVER_CAPS); }
@inline export function setServerCaps(c: u32): void { Session.setWord(W_SERVER_CAPS, c); }
@inline export function remaining(): u32 { return Session.word(W_REMAINING); }
@inline export function setRemaining(n: u32): void { Session.setWord(W_REMAINING, n); }
@inline export function preparedColumns(): u32 { return Session.word(W_PREPARED_COLUMNS); }
@inline export function setPreparedColumns(n: u32): void { Session.setWord(W_PREPARED_COLUMNS, n); }
