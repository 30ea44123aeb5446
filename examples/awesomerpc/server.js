'use strict';
// A tiny AwesomeRPC server. Commands: 1 echo, 2 who-am-i (its name), 3 upper-case (as NAME:TEXT).
// Usage: node server.js NAME PORT   (PORT 0 picks a free one; the bound port is printed)
const net = require('node:net');
const { encode, decode } = require('./awesomerpc');

function startServer(name, port = 0) {
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      buf = decode(Buffer.concat([buf, chunk]), ({ id, cmd, body }) => {
        const answers = { 1: body, 2: Buffer.from(name), 3: Buffer.from(`${name}:${body.toString().toUpperCase()}`) };
        const reply = answers[cmd];
        socket.write(reply ? encode({ id, cmd, body: reply }) : encode({ id, cmd, code: 400, body: Buffer.from(`unknown command ${cmd}`) }));
      });
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (require.main === module) {
  const [name = 'v1', port = '0'] = process.argv.slice(2);
  startServer(name, Number(port)).then((s) => console.log(`awesomerpc server ${name} on 127.0.0.1:${s.address().port}`));
}
module.exports = { startServer };
