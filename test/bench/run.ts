// `npm run bench -- <name…>`: runs the named benchmarks (default: all). Each prints a table;
// the last line on stdout is one JSON object with every figure.
// Environment: BENCH_ROUNDS (default 3), BENCH_REQUESTS_P1, BENCH_REQUESTS_P16 (redis),
// BENCH_DURATION_MS (thrift, per measurement).
import { redisBench } from './redis-bench';
import { thriftBench } from './thrift-bench';
import { mysqlBench } from './mysql-bench';
import { memcachedBench } from './memcached-bench';
import { xdsBench } from './xds-bench';
import { filtersBench } from './filters-bench';
import { resilienceBench } from './resilience-bench';
import { latencyBench } from './latency-bench';
import { memoryBench } from './memory-bench';
import { meteringBench } from './metering-bench';
import { profileBench } from './profile-bench';
import { workersBench } from './workers-bench';
import { telemetryBench } from './telemetry-bench';
import { securityBench } from './security-bench';

/** The redis-benchmark load of the redis and workers benchmarks. */
const redisLoad = () => ({
  rounds: Number(process.env.BENCH_ROUNDS ?? 3),
  requestsP1: Number(process.env.BENCH_REQUESTS_P1 ?? 200_000),
  requestsP16: Number(process.env.BENCH_REQUESTS_P16 ?? 1_000_000),
  clients: 50,
});

const benches: Record<string, () => Promise<Record<string, unknown>>> = {
  redis: () => redisBench(redisLoad()),
  thrift: () => thriftBench({
    rounds: Number(process.env.BENCH_ROUNDS ?? 3),
    clients: 50,
    durationMs: Number(process.env.BENCH_DURATION_MS ?? 5000),
  }),
  mysql: () => mysqlBench({
    rounds: Number(process.env.BENCH_ROUNDS ?? 3),
    clients: Number(process.env.BENCH_CLIENTS ?? 16),
    durationMs: Number(process.env.BENCH_DURATION_MS ?? 5000),
  }),
  memcached: () => memcachedBench({
    rounds: Number(process.env.BENCH_ROUNDS ?? 3),
    clients: Number(process.env.BENCH_CLIENTS ?? 16),
    durationMs: Number(process.env.BENCH_DURATION_MS ?? 5000),
  }),
  filters: () => filtersBench({
    rounds: Number(process.env.BENCH_ROUNDS ?? 3),
    requests: Number(process.env.BENCH_REQUESTS_P16 ?? 1_000_000),
    clients: 50,
  }),
  resilience: () => resilienceBench({
    rounds: Number(process.env.BENCH_ROUNDS ?? 3),
    requests: Number(process.env.BENCH_REQUESTS_P16 ?? 1_000_000),
    clients: 50,
  }),
  latency: () => latencyBench({
    redisRates: [5000, 20_000],
    thriftRates: [2000, 5000],
    durationMs: Number(process.env.BENCH_DURATION_MS ?? 5000),
  }),
  metering: () => meteringBench({
    rounds: Number(process.env.BENCH_ROUNDS ?? 5),
    requests: Number(process.env.BENCH_REQUESTS_P16 ?? 400_000),
    clients: 50,
  }),
  memory: () => memoryBench({
    connections: Number(process.env.BENCH_CONNECTIONS ?? 1000),
    settleMs: 4000,
  }),
  profile: () => profileBench({
    requests: Number(process.env.BENCH_REQUESTS_P16 ?? 1_000_000),
    clients: 50,
    pipeline: 16,
  }),
  workers: () => workersBench(redisLoad()),
  telemetry: () => telemetryBench({
    rounds: Number(process.env.BENCH_ROUNDS ?? 5),
    requests: Number(process.env.BENCH_REQUESTS_P16 ?? 1_000_000),
    clients: 50,
  }),
  xds: () => xdsBench({
    agents: Number(process.env.BENCH_AGENTS ?? 100),
    changes: Number(process.env.BENCH_CHANGES ?? 20),
    debounceMs: Number(process.env.BENCH_DEBOUNCE_MS ?? 100),
  }),
  security: () => securityBench({ ...redisLoad(), requestsP1: Number(process.env.BENCH_REQUESTS_P1 ?? 100_000), requestsP16: Number(process.env.BENCH_REQUESTS_P16 ?? 500_000), handshakes: Number(process.env.BENCH_HANDSHAKES ?? 3000) }),
};

const USAGE = `usage: npm run bench -- [${Object.keys(benches).join('|')}…]   (default: all)
Environment: BENCH_ROUNDS (3), BENCH_REQUESTS_P1 and BENCH_REQUESTS_P16 (redis), BENCH_DURATION_MS
(thrift, mysql, memcached, latency), BENCH_CLIENTS (mysql, memcached, 16), BENCH_AGENTS, BENCH_CHANGES, BENCH_DEBOUNCE_MS (xds), BENCH_CONNECTIONS (memory, 1000), BENCH_HANDSHAKES (security, 3000); workers uses the redis variables; filters, resilience, metering and telemetry use BENCH_ROUNDS and BENCH_REQUESTS_P16. Each benchmark prints a table; the
last line on stdout is one JSON object with every figure.
`;

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((a) => a !== '--');
  if (names.includes('--help') || names.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  const selected = names.length > 0 ? names : Object.keys(benches);
  const unknown = selected.filter((n) => !benches[n]);
  if (unknown.length) {
    process.stderr.write(`bench: unknown benchmark(s): ${unknown.join(', ')}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const results: Record<string, unknown> = {};
  for (const name of selected) results[name] = await benches[name]();
  process.stdout.write(JSON.stringify(selected.length === 1 ? results[selected[0]] : results) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
