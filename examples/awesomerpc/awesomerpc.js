'use strict';
// AwesomeRPC packets for plain Node.js (used by server.js and client.js).
const HEADER = 11;

function encode({ id, cmd, code = 0, body = Buffer.alloc(0) }) {
  const packet = Buffer.alloc(HEADER + body.length);
  packet.writeUInt8(1, 0);
  packet.writeUInt32BE(id, 1);
  packet.writeUInt16BE(packet.length, 5);
  packet.writeInt16BE(cmd, 7);
  packet.writeInt16BE(code, 9);
  body.copy(packet, HEADER);
  return packet;
}

/** Calls onPacket for every complete packet; returns the unconsumed rest. */
function decode(buf, onPacket) {
  while (buf.length >= HEADER && buf.length >= buf.readUInt16BE(5)) {
    const len = buf.readUInt16BE(5);
    onPacket({ id: buf.readUInt32BE(1), cmd: buf.readInt16BE(7), code: buf.readInt16BE(9), body: buf.subarray(HEADER, len) });
    buf = buf.subarray(len);
  }
  return buf;
}

module.exports = { encode, decode, HEADER };
