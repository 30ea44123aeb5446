// One redis-benchmark run (-t set,get), as every benchmark here uses it: the combined rate of
// the SET and GET tests, total requests over total time.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function redisBenchmark(port: number, pipeline: number, requests: number, clients: number): Promise<number> {
  const { stdout } = await run('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'set,get', '-n', String(requests), '-c', String(clients), '-P', String(pipeline), '--csv'], { maxBuffer: 1 << 20 });
  const rows = stdout.trim().split('\n').filter((l) => /^"(SET|GET)"/.test(l));
  if (rows.length !== 2) throw new Error(`unexpected redis-benchmark output:\n${stdout}`);
  const rates = rows.map((l) => Number(JSON.parse(`[${l}]`)[1]));
  return (2 * requests) / rates.reduce((t, r) => t + requests / r, 0);
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
