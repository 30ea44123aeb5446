// The measurement both client benchmarks (mysql, memcached) share: for each round and each load,
// the same clients straight to the server and through meltemi, interleaved so drift hits both;
// medians, the ratio, and meltemi's CPU per operation from its process's counters.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cpuSeconds } from './proc-cpu';

const run = promisify(execFile);

export interface LoadResult { ops: number; seconds: number }

/** Runs one load in a child process (so meltemi's CPU is its own): `node <script> …args`, whose last stdout line is {"ops","seconds"}. */
export async function childLoad(script: string, ...args: Array<string | number>): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, [join(__dirname, script), ...args.map(String)]);
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Runs `rounds` of every mode against both targets; `load(mode, target)` runs one measurement.
 * Prints a table of `what[mode]` rows and returns the figures keyed by mode.
 */
export async function directVsMeltemi<M extends string>(opts: {
  name: string;
  rounds: number;
  modes: readonly M[];
  what: Record<M, string>;
  meltemiPid: number;
  load: (mode: M, target: 'direct' | 'meltemi') => Promise<LoadResult>;
}): Promise<Record<string, unknown>> {
  const samples = new Map<string, Array<{ rate: number; cpu: number | null }>>();
  for (let round = 1; round <= opts.rounds; round++) {
    for (const mode of opts.modes) {
      for (const target of ['direct', 'meltemi'] as const) {
        const cpu0 = target === 'meltemi' ? cpuSeconds(opts.meltemiPid) : 0;
        const r = await opts.load(mode, target);
        const cpu = target === 'meltemi' ? ((cpuSeconds(opts.meltemiPid) - cpu0) * 1e6) / r.ops : null;
        const key = `${mode}/${target}`;
        if (!samples.has(key)) samples.set(key, []);
        samples.get(key)!.push({ rate: r.ops / r.seconds, cpu });
        process.stderr.write(`round ${round} ${opts.name} ${mode} ${target}: ${Math.round(r.ops / r.seconds)} ops/s${cpu === null ? '' : `, proxy CPU ${cpu.toFixed(1)} µs/op`}\n`);
      }
    }
  }
  const result: Record<string, unknown> = {};
  const lines = ['| load | direct ops/s | meltemi ops/s | ratio | proxy CPU µs/op |', '|---|---|---|---|---|'];
  for (const mode of opts.modes) {
    const direct = median(samples.get(`${mode}/direct`)!.map((s) => s.rate));
    const through = median(samples.get(`${mode}/meltemi`)!.map((s) => s.rate));
    const cpu = median(samples.get(`${mode}/meltemi`)!.map((s) => s.cpu!));
    lines.push(`| ${opts.what[mode]} | ${Math.round(direct)} | ${Math.round(through)} | ${(through / direct).toFixed(2)} | ${cpu.toFixed(1)} |`);
    result[mode] = { direct_ops_per_s: Math.round(direct), meltemi_ops_per_s: Math.round(through), ratio: Number((through / direct).toFixed(3)), meltemi_cpu_us_per_op: Number(cpu.toFixed(2)) };
  }
  process.stdout.write(lines.join('\n') + '\n');
  return result;
}
