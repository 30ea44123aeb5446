// The baseline a Node proxy cannot beat by much: an L4 pipe with no parsing at all.
// Usage: node pipe-proxy.js LISTEN_PORT UPSTREAM_PORT
import net from 'node:net';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number);
const server = net.createServer((client) => {
  const upstream = net.connect(upstreamPort, '127.0.0.1');
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream).pipe(client);
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('error', close);
  upstream.on('error', close);
  client.on('close', close);
  upstream.on('close', close);
});
server.listen(listenPort, '127.0.0.1', () => process.stdout.write(`pipe proxy on ${listenPort}\n`));
process.on('SIGTERM', () => process.exit(0));
