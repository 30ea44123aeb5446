// Benchmark Thrift load: node thrift-load.js PORT CLIENTS DURATION_MS — each client (its own
// connection) calls echo() in a loop until the deadline; prints the total number of calls.
import { thriftClient } from '../helpers/thrift-peers';

async function main(): Promise<void> {
  const [port, clients, durationMs] = process.argv.slice(2).map(Number);
  const wire = { transport: 'framed', protocol: 'binary' } as const;
  const conns = await Promise.all(Array.from({ length: clients }, () => thriftClient(port, wire)));
  const deadline = Date.now() + durationMs;
  let calls = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(conns.map(async (c) => {
    while (Date.now() < deadline) {
      await c.echo.echo('ping', { k: 'v' }, [1], []);
      calls++;
    }
  }));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const c of conns) c.close();
  process.stdout.write(JSON.stringify({ calls, seconds }) + '\n');
  process.exit(0);
}
main().catch((err) => { process.stderr.write(String(err?.stack ?? err)); process.exit(1); });
