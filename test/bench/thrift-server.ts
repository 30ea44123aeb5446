// Benchmark Thrift server (framed binary): node thrift-server.js — prints its port.
import { startThriftServer } from '../helpers/thrift-peers';

startThriftServer('bench', { transport: 'framed', protocol: 'binary' }).then((s) => process.stdout.write(`${s.port}\n`));
process.on('SIGTERM', () => process.exit(0));
