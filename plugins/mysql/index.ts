// The MySQL codec (client/server protocol 4.1, as MariaDB and MySQL speak it): a server-first,
// stateful protocol, so it declares a bound session (ABI 1.2). The server's greeting is relayed
// with TLS and compression taken out (the proxy must read what follows); the login gives the
// session's routing metadata (`user`, `database`); each command gives `command` and, for
// statements, `verb` and `table`. Responses are streamed: a result set goes to the client packet
// run by packet run, never held whole. A login that routes to another server than the one that
// greeted moves there with an auth switch (rebind).

import {
  Bytes, Codec, CodecInfo, Correlation, Frame, Output, registerCodec,
  ERR_OVER_LIMIT, ERR_PERMISSION_DENIED, ERR_PROTOCOL_ERROR, ERR_ROUTE_NOT_FOUND, ERR_TIMEOUT,
  FRAME_CONNECTION_SCOPED, FRAME_DRAIN_CLOSE, FRAME_PARTIAL, FRAME_REBIND, FRAME_REWRITTEN, FRAME_ROUTE, FRAME_UNSOLICITED,
  KEY_COMMAND, MSG_ONEWAY, MSG_RESPONSE, RESPONSE_ERROR, STATUS_OK, STATUS_PROTOCOL_ERROR, Session,
} from "../../sdk/assembly";
import { needEnd, packetEnd, payloadLength, seqOf, shiftSequence, header } from "./packets";
import {
  CLIENT_DEPRECATE_EOF, authSwitch, databaseAt, databaseLen, greetingCaps, greetingError, loginCaps, loginError,
  parseGreeting, parseLogin, reLogin, rewriteGreeting, userAt, userLen,
} from "./handshake";
import {
  EXPECT_AUTH, EXPECT_BINARY_RESULT, EXPECT_FETCH, EXPECT_FIELD_LIST, EXPECT_NONE, EXPECT_PREPARE, EXPECT_SIMPLE, EXPECT_STREAM,
  EXPECT_STRING, EXPECT_TEXT_RESULT, STEP_BAD, STEP_DONE, STEP_ERROR_DONE, STEP_INFILE, step, stepError,
} from "./results";
import {
  FLAG_DEPRECATE_EOF, PHASE_AUTH, PHASE_COMMAND, PHASE_GREETING, PHASE_INFILE, PHASE_LOGIN, PHASE_REBIND,
  clientCaps, delta, flags, phase, setClientCaps, setDelta, setFlags, setPhase, setServerCaps, serverCaps,
} from "./session";
import { parseStatement, tableAt, tableLen, verbAt, verbLen } from "./query";
import { COMMAND_NAMES, COM_CHANGE_USER, COM_FIELD_LIST, COM_INIT_DB, COM_QUERY, COM_QUIT, COM_STMT_PREPARE, expectOf, isOneway } from "./commands";

export * from "../../sdk/assembly/exports";

/** Server packets grouped into one streamed frame, at most (a result set goes out in runs of this size). */
const RUN_BYTES: i32 = 256 * 1024;
/** Largest login or auth packet payload accepted. */
const MAX_LOGIN: i32 = 64 * 1024;

function fail(frame: Frame, message: string): i32 {
  frame.fail(message);
  return STATUS_PROTOCOL_ERROR;
}

class MysqlCodec extends Codec {
  decode(input: Bytes, frame: Frame, upstream: bool): i32 {
    return upstream ? this.decodeServer(input, frame) : this.decodeClient(input, frame);
  }

  // ---- client → server ---------------------------------------------------------------------

  private decodeClient(input: Bytes, frame: Frame): i32 {
    const p = phase();
    if (p == PHASE_GREETING) return fail(frame, "the client spoke before the server's greeting");
    // Logins and auth data are small (MariaDB refuses a login over a few KB): a client announcing
    // megabytes here is not a MySQL client, and is not waited for.
    if ((p == PHASE_LOGIN || p == PHASE_AUTH || p == PHASE_REBIND) && input.length >= 3 && payloadLength(input, 0) > MAX_LOGIN) {
      return fail(frame, "login packet too large");
    }
    const end = packetEnd(input, 0);
    if (end == 0) { frame.needBytes = needEnd; return 0; }
    frame.flags |= FRAME_CONNECTION_SCOPED;
    if (p == PHASE_COMMAND) return this.command(input, end, frame);
    if (p == PHASE_LOGIN) return this.login(input, end, frame);
    if (p == PHASE_AUTH || p == PHASE_REBIND) {
      frame.putString(KEY_COMMAND, "AUTH");
      frame.expect = EXPECT_AUTH;
      if (p == PHASE_REBIND) {
        frame.flags |= FRAME_REBIND;
        setPhase(PHASE_AUTH);
      } else if (delta() != 0) {
        shiftSequence(input, end, -<i32>delta());
        frame.flags |= FRAME_REWRITTEN;
      }
      return end;
    }
    if (p == PHASE_INFILE) {
      frame.messageType = MSG_ONEWAY;
      frame.putString(KEY_COMMAND, "INFILE_DATA");
      if (payloadLength(input, 0) == 0) setPhase(PHASE_COMMAND);
      return end;
    }
    return fail(frame, "the connection is in an unknown state");
  }

  private login(input: Bytes, end: i32, frame: Frame): i32 {
    if (!parseLogin(input, end)) return fail(frame, loginError);
    setClientCaps(loginCaps);
    frame.putString(KEY_COMMAND, "LOGIN");
    frame.putNamedRef("user", userAt, userLen);
    if (databaseLen > 0) frame.putNamedRef("database", databaseAt, databaseLen);
    frame.flags |= FRAME_ROUTE;
    frame.expect = EXPECT_AUTH;
    setPhase(PHASE_AUTH);
    return end;
  }

  private command(input: Bytes, end: i32, frame: Frame): i32 {
    if (end < 5) return fail(frame, "empty command packet");
    const cmd = input.at(4);
    frame.putString(KEY_COMMAND, cmd < <u8>COMMAND_NAMES.length ? COMMAND_NAMES[cmd] : "COM_UNKNOWN");
    frame.expect = expectOf(cmd);
    if (isOneway(cmd)) frame.messageType = MSG_ONEWAY;
    if (cmd == COM_QUIT) frame.flags |= FRAME_DRAIN_CLOSE;
    if (cmd == COM_QUERY || cmd == COM_STMT_PREPARE) {
      parseStatement(input, 5, end);
      if (verbAt >= 0) frame.putNamedRefUppercase("verb", input, verbAt, verbLen);
      if (tableAt >= 0) {
        // USE db names a database, not a table.
        if (verbLen == 3 && input.equalsLower(verbAt, 3, "use")) frame.putNamedRef("database", tableAt, tableLen);
        else frame.putNamedRef("table", tableAt, tableLen);
      }
    } else if (cmd == COM_INIT_DB) {
      frame.putNamedRef("database", 5, end - 5);
    } else if (cmd == COM_FIELD_LIST) {
      const nul = input.indexOf(0, 5);
      frame.putNamedRef("table", 5, (nul < 0 || nul > end ? end : nul) - 5);
    } else if (cmd == COM_CHANGE_USER) {
      const nul = input.indexOf(0, 5);
      if (nul > 5 && nul < end) frame.putNamedRef("user", 5, nul - 5);
      setPhase(PHASE_AUTH);
    }
    return end;
  }

  // ---- server → client ---------------------------------------------------------------------

  private decodeServer(input: Bytes, frame: Frame): i32 {
    const end = packetEnd(input, 0);
    if (end == 0) { frame.needBytes = needEnd; return 0; }
    const expect = Session.expected();
    const p = phase();
    frame.messageType = MSG_RESPONSE;
    if (expect == EXPECT_NONE) return this.unsolicited(input, end, frame, p);
    if (expect == EXPECT_AUTH) return this.authAnswer(input, end, frame);
    // A response: as many whole packets as are here, up to its end.
    let at = 0;
    let outcome = STEP_BAD;
    let e = end;
    while (true) {
      outcome = step(input, at, expect);
      if (outcome == STEP_BAD) return fail(frame, stepError);
      at = e;
      if (outcome != 0 /* STEP_MORE */ || at >= RUN_BYTES) break;
      e = packetEnd(input, at);
      if (e == 0) break;
    }
    if (outcome == STEP_DONE) return at;
    if (outcome == STEP_ERROR_DONE) { frame.status = RESPONSE_ERROR; return at; }
    if (outcome == STEP_INFILE) setPhase(PHASE_INFILE);
    frame.flags |= FRAME_PARTIAL;
    return at;
  }

  /** A packet nobody asked for: the greeting (the session's, or a rebind's new server), or an error before closing. */
  private unsolicited(input: Bytes, end: i32, frame: Frame, p: u8): i32 {
    frame.flags |= FRAME_UNSOLICITED;
    if (input.at(4) == 0xff) { frame.status = RESPONSE_ERROR; return end; }
    if (p == PHASE_GREETING || (input.at(4) == 10 && seqOf(input, 0) == 0 && p != PHASE_COMMAND)) {
      if (!parseGreeting(input, end)) return fail(frame, greetingError);
      rewriteGreeting(input);
      frame.flags |= FRAME_REWRITTEN;
      setServerCaps(greetingCaps);
      if (p == PHASE_GREETING) setPhase(PHASE_LOGIN);
      return end;
    }
    return end;
  }

  /** The server's answer in the login exchange: OK (logged in), ERR, an auth switch or more auth data. */
  private authAnswer(input: Bytes, end: i32, frame: Frame): i32 {
    if (delta() != 0) {
      shiftSequence(input, end, <i32>delta());
      frame.flags |= FRAME_REWRITTEN;
    }
    const first = input.at(4);
    if (first == 0x00) {
      setPhase(PHASE_COMMAND);
      setDelta(0);
      const both = clientCaps() & serverCaps();
      setFlags((flags() & ~FLAG_DEPRECATE_EOF) | ((both & CLIENT_DEPRECATE_EOF) != 0 ? FLAG_DEPRECATE_EOF : 0));
    } else if (first == 0xff) {
      frame.status = RESPONSE_ERROR;
    } else if (first == 0x01 && payloadLength(input, 0) == 2 && input.at(5) == 3) {
      // caching_sha2_password's "fast auth succeeded": the OK follows without a client packet.
      frame.flags |= FRAME_PARTIAL;
    }
    return end;
  }

  // ---- replies made here -------------------------------------------------------------------

  localReply(request: Bytes, kind: i32, message: Bytes, out: Output): i32 {
    const seq: u8 = request.length >= 4 ? seqOf(request, 0) + 1 : 0;
    const login = phase() <= PHASE_AUTH && request.length > 0;
    let code: u16 = 1105;
    let state = "HY000";
    if (kind == ERR_PERMISSION_DENIED) { code = login ? 1045 : 1142; state = login ? "28000" : "42000"; }
    else if (kind == ERR_PROTOCOL_ERROR) { code = 1047; state = "08S01"; }
    else if (kind == ERR_OVER_LIMIT && login) { code = 1040; state = "08004"; }
    else if (kind == ERR_ROUTE_NOT_FOUND) { code = 1105; }
    else if (kind == ERR_TIMEOUT) { code = 1969; state = "70100"; }
    const msgLen = message.length > 512 ? 512 : message.length;
    header(out, 1 + 2 + 1 + 5 + msgLen, seq);
    out.u8(0xff).u16le(code).u8(35 /* # */).string(state).bytes(message, 0, msgLen);
    return STATUS_OK;
  }

  rebind(greeting: Bytes, login: Bytes, answer: Bytes | null, out: Output): i32 {
    if (answer === null) {
      const status = authSwitch(greeting, login, out);
      if (status == STATUS_OK) setPhase(PHASE_REBIND);
      return status;
    }
    const status = reLogin(greeting, login, answer, out);
    // The client numbered its answer after our auth switch; the new server counts from its login.
    if (status == STATUS_OK) setDelta(<u8>(seqOf(answer, 0) - 1));
    return status;
  }
}

registerCodec(new CodecInfo("mysql", "mysql", "1.0.0", Correlation.Order, true, true, true), () => new MysqlCodec());
