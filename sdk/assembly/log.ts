// Guest logging through the host's `meltemi.log` import (ABI.md §5).

import { LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_WARN } from "./abi";

// @ts-ignore: decorator
@external("meltemi", "log")
declare function hostLog(level: i32, ptr: usize, len: i32): void;

export function log(level: i32, message: string): void {
  const bytes = String.UTF8.encode(message);
  hostLog(level, changetype<usize>(bytes), bytes.byteLength);
}

export function logDebug(message: string): void { log(LOG_DEBUG, message); }
export function logInfo(message: string): void { log(LOG_INFO, message); }
export function logWarn(message: string): void { log(LOG_WARN, message); }
export function logError(message: string): void { log(LOG_ERROR, message); }
