// AwesomeRPC: the in-house protocol from the Aeraki talk, as a meltemi codec.
// Packet = 11-byte header + body, big-endian:
//   version i8 | request id u32 | packet length u16 (whole packet) | command i16 | response code i16
// Metadata: `cmd` (the command as decimal text) and `version`. Command 0 is a heartbeat.
import {
  Bytes, Codec, CodecInfo, Correlation, Frame, Mutation, Output, registerCodec,
  ERR_ROUTE_NOT_FOUND, FRAME_HAS_REQUEST_ID, KEY_VERSION, MSG_HEARTBEAT, RESPONSE_ERROR,
  STATUS_OK, STATUS_PROTOCOL_ERROR, STATUS_UNCHANGED,
} from "meltemi/sdk/assembly";

// The ABI exports (decode, encode, …) come from the SDK: a codec never writes them itself.
export * from "meltemi/sdk/assembly/exports";

const HEADER = 11;
const VERSION: u8 = 1;
const HEARTBEAT_CMD: i16 = 0;
const CODE_NOT_FOUND: i16 = 404;
const CODE_PROXY_ERROR: i16 = 502;

class AwesomeRpcCodec extends Codec {
  // Called for every packet: describe it, return its length, or 0 to wait for more bytes.
  decode(input: Bytes, frame: Frame, upstream: bool): i32 {
    if (input.length < HEADER) return 0;
    if (input.at(0) != VERSION) {
      frame.fail("unsupported AwesomeRPC version " + input.at(0).toString());
      return STATUS_PROTOCOL_ERROR;
    }
    const length = <i32>input.u16be(5);
    if (length < HEADER) {
      frame.fail("packet length " + length.toString() + " is shorter than the header");
      return STATUS_PROTOCOL_ERROR;
    }
    if (input.length < length) {
      frame.needBytes = length; // the host waits for the whole packet before calling again
      return 0;
    }
    const cmd = input.i16be(7);
    frame.requestId = <u64>input.u32be(1);
    frame.flags |= FRAME_HAS_REQUEST_ID;
    if (cmd == HEARTBEAT_CMD) frame.messageType = MSG_HEARTBEAT;
    // Requests and responses share one layout; the host presets the type by direction.
    if (upstream && input.i16be(9) != 0) frame.status = RESPONSE_ERROR;
    frame.putNamed("cmd", cmd.toString());
    frame.putRef(KEY_VERSION, 0, 1);
    return length;
  }

  // Applies a mutation. AwesomeRPC has no headers to add, so only the request id can change:
  // the host renumbers requests when it shares one upstream connection between clients.
  encode(input: Bytes, messageType: u8, upstream: bool, mutation: Mutation, out: Output): i32 {
    if (!mutation.hasRequestId) return STATUS_UNCHANGED;
    out.bytes(input, 0, input.length);
    out.setU32be(1, <u32>mutation.requestId);
    return STATUS_OK;
  }

  // An error answer built by the proxy itself (no route, upstream down, …).
  localReply(request: Bytes, kind: i32, message: Bytes, out: Output): i32 {
    const hasRequest = request.length >= HEADER;
    writePacket(out,
      hasRequest ? request.u32be(1) : 0,
      hasRequest ? request.i16be(7) : -1,
      kind == ERR_ROUTE_NOT_FOUND ? CODE_NOT_FOUND : CODE_PROXY_ERROR,
      message);
    return STATUS_OK;
  }

  // Heartbeats are answered by the proxy, never forwarded.
  heartbeatReply(request: Bytes, out: Output): i32 {
    writePacket(out, request.u32be(1), HEARTBEAT_CMD, 0, null);
    return STATUS_OK;
  }
}

function writePacket(out: Output, id: u32, cmd: i16, code: i16, body: Bytes | null): void {
  const bodyLen = body ? min(body.length, 65535 - HEADER) : 0;
  out.u8(VERSION).u32be(id).u16be(<u16>(HEADER + bodyLen)).u16be(<u16>cmd).u16be(<u16>code);
  if (body) out.bytes(body, 0, bodyLen);
}

// One codec object can serve every connection: it keeps no state between packets.
const codec = new AwesomeRpcCodec();
function makeCodec(): Codec { return codec; }

registerCodec(new CodecInfo("awesomerpc", "awesomerpc", "1.0.0", Correlation.RequestId), makeCodec);
