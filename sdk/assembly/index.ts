// The meltemi AssemblyScript SDK: import from here to write a codec. The entry file of a plugin
// also re-exports "./exports" so the ABI functions become module exports.

export * from "./abi";
export * from "./keys";
export { Bytes, Output } from "./bytes";
export { Frame } from "./metadata";
export { Mutation, MutationOp } from "./mutation";
export { Codec, CodecInfo, Correlation } from "./codec";
export { registerCodec } from "./registry";
export { Session } from "./session";
export { log, logDebug, logInfo, logWarn, logError } from "./log";
export { CALL_DONE, CALL_RESPONSE, CALL_TIMER, Filter, FilterInfo, FilterRequest, registerFilter, nowMs } from "./filter";
export { JsonKind, JsonValue, jsonError, parseJson } from "./json";
export { AttributeMatch, allMatch, matchError, readMatch } from "./match";
export { Metric, defineCounter, defineGauge, defineHistogram } from "./metrics";
