// mysql2 clients -> meltemi (1 worker) -> MariaDB, against the same clients straight to MariaDB:
// point queries, 1000-row result sets and whole sessions (login, ping, quit), interleaved rounds,
// medians, and meltemi's CPU per operation.

import { MeltemiProcess } from '../helpers/meltemi-process';
import { MariaDbServer } from '../helpers/mariadb-server';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { childLoad, directVsMeltemi } from './direct-vs-meltemi';

const MODES = ['point', 'rows', 'connect'] as const;
type Mode = (typeof MODES)[number];

const load = (port: number, clients: number, ms: number, mode: Mode) => childLoad('mysql-load.js', port, clients, ms, mode);

export async function mysqlBench(opts: { rounds: number; clients: number; durationMs: number }): Promise<Record<string, unknown>> {
  const db = await MariaDbServer.start();
  const rows = Array.from({ length: 1000 }, (_, i) => `(${i + 1}, 'name-${i + 1}')`).join(',');
  await db.admin(`CREATE USER 'bench'@'%' IDENTIFIED BY 'bench'; CREATE DATABASE bench; GRANT ALL ON bench.* TO 'bench'@'%';
    CREATE TABLE bench.t (id INT PRIMARY KEY, name VARCHAR(40)); INSERT INTO bench.t VALUES ${rows};`);
  const port = await freePort();
  const meltemi = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: mysql
    port: ${port}
    protocol: mysql
    route_config: { routes: [ { route: { cluster: db } } ] }
clusters:
  - name: db
    endpoints: [ { address: 127.0.0.1, port: ${db.port} } ]
`, port, { args: ['--workers', '1'] });
  let figures: Record<string, unknown>;
  try {
    await load(port, opts.clients, 1000, 'point'); // warm-up
    figures = await directVsMeltemi({
      name: 'mysql',
      rounds: opts.rounds,
      modes: MODES,
      what: { point: 'point SELECT', rows: '1000-row SELECT', connect: 'login + ping + quit' },
      meltemiPid: meltemi.pid,
      load: (mode, target) => load(target === 'direct' ? db.port : port, opts.clients, opts.durationMs, mode),
    });
  } finally {
    await meltemi.stop();
    await db.stop();
  }
  return { benchmark: 'mysql', clients: opts.clients, rounds: opts.rounds, duration_ms: opts.durationMs, ...figures };
}
