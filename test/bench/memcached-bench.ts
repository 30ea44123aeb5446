// Memcached clients -> meltemi (1 worker) -> memcached, against the same clients straight to
// memcached: text gets, sets and 10-key multigets (memcache-client), binary gets (memjs) and raw
// pipelined gets; interleaved rounds, medians, and meltemi's CPU per operation.

import { MeltemiProcess } from '../helpers/meltemi-process';
import { MemcachedServer } from '../helpers/memcached-server';
import { PLUGIN_DIR } from '../helpers/paths';
import { freePort } from '../helpers/ports';
import { childLoad, directVsMeltemi } from './direct-vs-meltemi';

const MODES = ['get', 'set', 'multiget', 'binary', 'pipeline'] as const;
type Mode = (typeof MODES)[number];

const load = (port: number, clients: number, ms: number, mode: Mode) => childLoad('memcached-load.js', port, clients, ms, mode);

export async function memcachedBench(opts: { rounds: number; clients: number; durationMs: number }): Promise<Record<string, unknown>> {
  const db = await MemcachedServer.start(['-t', '1']);
  const port = await freePort();
  // Binary clients go to a listener whose shared connections speak binary (in auto mode each binary client has its own).
  const binaryPort = await freePort();
  const meltemi = await MeltemiProcess.start(`
log_level: warn
plugins: { directory: ${JSON.stringify(PLUGIN_DIR)} }
listeners:
  - name: memcached
    port: ${port}
    protocol: memcached
    route_config: { routes: [ { route: { cluster: db } } ] }
  - name: memcached-binary
    port: ${binaryPort}
    protocol: memcached
    codec_config: { protocol: binary }
    route_config: { routes: [ { route: { cluster: db } } ] }
clusters:
  - name: db
    endpoints: [ { address: 127.0.0.1, port: ${db.port} } ]
`, port, { args: ['--workers', '1'] });
  let figures: Record<string, unknown>;
  try {
    await load(port, opts.clients, 1000, 'get'); // warm-up
    figures = await directVsMeltemi({
      name: 'memcached',
      rounds: opts.rounds,
      modes: MODES,
      what: { get: 'text get (memcache-client)', set: 'text set, 100 B', multiget: 'text get of 10 keys', binary: 'binary get (memjs)', pipeline: 'text get, 16 pipelined' },
      meltemiPid: meltemi.pid,
      load: (mode, target) => load(target === 'direct' ? db.port : mode === 'binary' ? binaryPort : port, opts.clients, opts.durationMs, mode),
    });
  } finally {
    await meltemi.stop();
    await db.stop();
  }
  return { benchmark: 'memcached', clients: opts.clients, rounds: opts.rounds, duration_ms: opts.durationMs, ...figures };
}
