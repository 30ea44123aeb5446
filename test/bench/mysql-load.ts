// One load run against a MySQL endpoint (a child process, so the proxy's CPU is its own):
// `node mysql-load.js <port> <clients> <ms> <point|rows|connect>`. Prints {"ops","seconds"}.
// point: each client runs a primary-key SELECT in a loop (one in flight per connection, as
// drivers do); rows: each client reads a 1000-row result; connect: each client logs in, pings
// and quits in a loop (the handshake path, greeting relayed).

import mysql from 'mysql2/promise';

async function main(): Promise<void> {
  const [port, clients, ms, mode] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
  const options = { host: '127.0.0.1', port, user: 'bench', password: 'bench', database: 'bench' };
  const end = Date.now() + ms;
  let ops = 0;
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: clients }, async (_, i) => {
    if (mode === 'connect') {
      while (Date.now() < end) {
        const c = await mysql.createConnection(options);
        await c.ping();
        await c.end();
        ops++;
      }
      return;
    }
    const c = await mysql.createConnection(options);
    const sql = mode === 'rows' ? 'SELECT id, name FROM t' : `SELECT name FROM t WHERE id = ${1 + (i % 1000)}`;
    while (Date.now() < end) {
      await c.query(sql);
      ops++;
    }
    await c.end();
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(JSON.stringify({ ops, seconds }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
