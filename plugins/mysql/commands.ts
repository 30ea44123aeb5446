// Command bytes of the command phase, their names (metadata `command`) and what each expects back.

import {
  EXPECT_BINARY_RESULT, EXPECT_FETCH, EXPECT_FIELD_LIST, EXPECT_PREPARE, EXPECT_SIMPLE, EXPECT_STREAM, EXPECT_STRING, EXPECT_TEXT_RESULT,
} from "./results";

export const COM_QUIT: u8 = 0x01;
export const COM_INIT_DB: u8 = 0x02;
export const COM_QUERY: u8 = 0x03;
export const COM_FIELD_LIST: u8 = 0x04;
export const COM_STATISTICS: u8 = 0x09;
export const COM_PROCESS_INFO: u8 = 0x0a;
export const COM_CHANGE_USER: u8 = 0x11;
export const COM_BINLOG_DUMP: u8 = 0x12;
export const COM_STMT_PREPARE: u8 = 0x16;
export const COM_STMT_EXECUTE: u8 = 0x17;
export const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
export const COM_STMT_CLOSE: u8 = 0x19;
export const COM_STMT_FETCH: u8 = 0x1c;
export const COM_BINLOG_DUMP_GTID: u8 = 0x1e;

export const COMMAND_NAMES: string[] = [
  "COM_SLEEP", "COM_QUIT", "COM_INIT_DB", "COM_QUERY", "COM_FIELD_LIST", "COM_CREATE_DB", "COM_DROP_DB",
  "COM_REFRESH", "COM_SHUTDOWN", "COM_STATISTICS", "COM_PROCESS_INFO", "COM_CONNECT", "COM_PROCESS_KILL",
  "COM_DEBUG", "COM_PING", "COM_TIME", "COM_DELAYED_INSERT", "COM_CHANGE_USER", "COM_BINLOG_DUMP",
  "COM_TABLE_DUMP", "COM_CONNECT_OUT", "COM_REGISTER_SLAVE", "COM_STMT_PREPARE", "COM_STMT_EXECUTE",
  "COM_STMT_SEND_LONG_DATA", "COM_STMT_CLOSE", "COM_STMT_RESET", "COM_SET_OPTION", "COM_STMT_FETCH",
  "COM_DAEMON", "COM_BINLOG_DUMP_GTID", "COM_RESET_CONNECTION",
];

/** Commands the server never answers: forwarded, nothing awaited. */
export function isOneway(cmd: u8): bool {
  return cmd == COM_QUIT || cmd == COM_STMT_CLOSE || cmd == COM_STMT_SEND_LONG_DATA;
}

export function expectOf(cmd: u8): u32 {
  switch (cmd) {
    case COM_QUERY: case COM_PROCESS_INFO: return EXPECT_TEXT_RESULT;
    case COM_STMT_EXECUTE: return EXPECT_BINARY_RESULT;
    case COM_STMT_PREPARE: return EXPECT_PREPARE;
    case COM_FIELD_LIST: return EXPECT_FIELD_LIST;
    case COM_STATISTICS: return EXPECT_STRING;
    case COM_STMT_FETCH: return EXPECT_FETCH;
    case COM_BINLOG_DUMP: case COM_BINLOG_DUMP_GTID: return EXPECT_STREAM;
    case COM_CHANGE_USER: return 1; // EXPECT_AUTH
  }
  return EXPECT_SIMPLE;
}
