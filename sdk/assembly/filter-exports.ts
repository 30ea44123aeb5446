// The filter exports of ABI 1.1 (ABI-1.1.md §2). A filter's entry file re-exports this module:
//   export * from "meltemi/sdk/assembly/filter-exports";

import { Bytes } from "./bytes";
import { CALL_DONE, CALL_RESPONSE, CALL_TIMER, Filter, FilterRequest, registeredFilterFactory, registeredFilterInfo } from "./filter";
import { FILTER_ABORT, FILTER_CONTINUE, FILTER_LOCAL_REPLY, STATUS_BAD_ARGUMENT, STATUS_INTERNAL, STATUS_OK, STATUS_UNKNOWN_CONTEXT } from "./abi";
import { beginCall, fail, finishCall, inCap, inPtr, jsonString, out } from "./host-io";

export { meltemi_abi_v1, meltemi_ctrl, meltemi_in_reserve } from "./host-io";

const roots = new Map<i32, Filter>();
// Most calls are for the same root as the last one: remember it.
let lastRoot: i32 = 0;
let lastFilter: Filter | null = null;

@inline function rootFilter(root: i32): Filter | null {
  if (root == lastRoot && lastFilter !== null) return lastFilter;
  if (!roots.has(root)) return null;
  lastRoot = root;
  lastFilter = roots.get(root);
  return lastFilter;
}
const request = new FilterRequest();
const config = new Bytes();

const FILTER_ABI_MINOR: i32 = 1;

export function meltemi_info(): i32 {
  beginCall();
  const info = registeredFilterInfo;
  if (info === null) return fail(STATUS_INTERNAL, "no filter registered: call registerFilter() at the top level");
  // Filters use ABI 1.1 and nothing later: declaring 1 keeps them loading on every host since.
  out.string('{"abi_minor":').decimal(FILTER_ABI_MINOR).string(',"kind":"filter","name":');
  jsonString(out, info.name);
  out.string(',"version":');
  jsonString(out, info.version);
  out.string(',"calls":[');
  let first = true;
  if (info.calls & CALL_RESPONSE) { out.string('"response"'); first = false; }
  if (info.calls & CALL_TIMER) { out.string(first ? '"timer"' : ',"timer"'); first = false; }
  if (info.calls & CALL_DONE) out.string(first ? '"done"' : ',"done"');
  out.string("]}");
  return finishCall(STATUS_OK);
}

export function meltemi_root_new(root: i32, cfgLen: i32): i32 {
  beginCall();
  const factory = registeredFilterFactory;
  if (factory === null) return fail(STATUS_INTERNAL, "no filter registered");
  if (cfgLen < 0 || cfgLen > inCap()) return fail(STATUS_BAD_ARGUMENT, "cfg_len out of range");
  const filter = factory();
  const refused = filter.configure(config.reset(inPtr(), cfgLen));
  if (refused !== null) return fail(STATUS_BAD_ARGUMENT, refused);
  roots.set(root, filter);
  if (root == lastRoot) { lastRoot = 0; lastFilter = null; }
  return finishCall(STATUS_OK);
}

export function meltemi_root_free(root: i32): i32 {
  beginCall();
  roots.delete(root);
  if (root == lastRoot) { lastRoot = 0; lastFilter = null; }
  return finishCall(STATUS_OK);
}

function decided(action: i32): i32 {
  if (action == FILTER_LOCAL_REPLY) {
    out.clear();
    out.u32le(<u32>request.replyKind).string(request.replyMessage);
  } else if (action != FILTER_CONTINUE) {
    out.clear();
  }
  return finishCall(action);
}

export function meltemi_on_request(root: i32, req: i32, recLen: i32): i32 {
  beginCall();
  const filter = rootFilter(root);
  if (filter === null) return fail(STATUS_UNKNOWN_CONTEXT, "unknown root");
  if (recLen < 0 || recLen > inCap()) return fail(STATUS_BAD_ARGUMENT, "rec_len out of range");
  request.bind(root, req, inPtr(), recLen, out);
  return decided(filter.onRequest(request));
}

export function meltemi_on_response(root: i32, req: i32, recLen: i32): i32 {
  beginCall();
  if (!roots.has(root)) return fail(STATUS_UNKNOWN_CONTEXT, "unknown root");
  if (recLen < 0 || recLen > inCap()) return fail(STATUS_BAD_ARGUMENT, "rec_len out of range");
  request.bind(root, req, inPtr(), recLen, out);
  const action = roots.get(root).onResponse(request);
  return decided(action == FILTER_ABORT ? FILTER_ABORT : FILTER_CONTINUE);
}

export function meltemi_on_timer(root: i32, req: i32, timer: i32): i32 {
  beginCall();
  if (!roots.has(root)) return fail(STATUS_UNKNOWN_CONTEXT, "unknown root");
  request.bind(root, req, 0, 0, out);
  return decided(roots.get(root).onTimer(request, timer));
}

export function meltemi_on_done(root: i32, req: i32): i32 {
  beginCall();
  if (roots.has(root)) roots.get(root).onDone(req);
  return finishCall(STATUS_OK);
}
