'use strict';
// A tiny AwesomeRPC client. Usage: node client.js PORT CMD [BODY]
const net = require('node:net');
const { encode, decode } = require('./awesomerpc');

/** Opens a connection; `call(cmd, body)` resolves with the reply packet. */
function connect(port) {
  const socket = net.connect(port, '127.0.0.1');
  const waiting = new Map();
  let nextId = 1;
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = decode(Buffer.concat([buf, chunk]), (packet) => {
      waiting.get(packet.id)?.(packet);
      waiting.delete(packet.id);
    });
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => resolve({
      call(cmd, body = '') {
        const id = nextId++;
        return new Promise((done) => {
          waiting.set(id, done);
          socket.write(encode({ id, cmd, body: Buffer.from(body) }));
        });
      },
      close: () => socket.end(),
    }));
  });
}

if (require.main === module) {
  const [port, cmd = '2', body = ''] = process.argv.slice(2);
  connect(Number(port)).then(async (c) => {
    const r = await c.call(Number(cmd), body);
    console.log(`code ${r.code}: ${r.body.toString()}`);
    c.close();
  });
}
module.exports = { connect };
