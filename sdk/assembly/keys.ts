// Well-known metadata keys (ABI.md §6.1). A codec that puts one of these uses its id instead of
// spelling the key, so the host needs no string compare to find `method` or `key`.
export const KEY_SERVICE: u16 = 1;
export const KEY_METHOD: u16 = 2;
export const KEY_VERSION: u16 = 3;
export const KEY_COMMAND: u16 = 4;
export const KEY_KEY: u16 = 5;
export const KEY_INTERFACE: u16 = 6;
export const KEY_GROUP: u16 = 7;
export const KEY_X_REQUEST_ID: u16 = 8;
export const KEY_TRACEPARENT: u16 = 9;
export const KEY_TRACESTATE: u16 = 10;
export const KEY_APPLICATION_PROTOCOL: u16 = 11;
export const KEY_REAL_SERVER_ADDRESS: u16 = 12;

export const WELL_KNOWN_KEYS: string[] = [
  "",
  "service",
  "method",
  "version",
  "command",
  "key",
  "interface",
  "group",
  "x-request-id",
  "traceparent",
  "tracestate",
  "x-meta-protocol-application-protocol",
  "x-meta-protocol-real-server-address",
];
