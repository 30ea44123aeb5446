// A Thrift Echo server in a process of its own (framed binary), for benchmarks and for tests
// that kill it: node thrift-server.js [name] — prints its port.
import { startThriftServer } from '../helpers/thrift-peers';

startThriftServer(process.argv[2] ?? 'bench', { transport: 'framed', protocol: 'binary' }).then((s) => process.stdout.write(`${s.port}\n`));
process.on('SIGTERM', () => process.exit(0));
