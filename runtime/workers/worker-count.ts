// How many workers `meltemi run` starts when --workers is not given.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * A sidecar shares its pod's CPU with the application, so the default stops at 2 workers (the
 * concurrency Istio gives its sidecar); below that, the CPUs this process may use: the cgroup's
 * quota when there is one, else the CPUs the scheduler allows.
 */
export const SIDECAR_MAX_WORKERS = 2;

export function defaultWorkers(readCgroup: () => string | undefined = cgroupCpuMax): number {
  return Math.max(1, Math.min(SIDECAR_MAX_WORKERS, availableParallelism(), quotaCpus(readCgroup()) ?? Number.POSITIVE_INFINITY));
}

/** CPUs a cgroup v2 `cpu.max` line ("max 100000" or "150000 100000") allows, rounded up. */
export function quotaCpus(cpuMax: string | undefined): number | undefined {
  const [quota, period] = (cpuMax ?? '').trim().split(/\s+/);
  const q = Number(quota);
  const p = Number(period);
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return Math.ceil(q / p);
}

function cgroupCpuMax(): string | undefined {
  try {
    return readFileSync('/sys/fs/cgroup/cpu.max', 'utf8');
  } catch {
    return undefined;
  }
}
