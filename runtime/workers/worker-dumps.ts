// What /config_dump and /plugins add when worker threads serve the listeners: the generation
// each worker reports it runs, and each plugin's connections and traps, which are the workers'.

import type { WorkerPool } from './worker-pool';

/** `dump` (the primary's /config_dump) with the workers' generations. */
export async function withWorkers(dump: unknown, workers: WorkerPool): Promise<unknown> {
  return {
    ...(dump as Record<string, unknown>),
    workers: {
      count: workers.size,
      committed_generation: workers.lastCommitted,
      last_rejected_generation: workers.lastRejected,
      threads: (await workers.statuses()).map(({ status, ...w }) => ({
        worker: w.worker, thread_id: w.thread_id, running: w.running, restarts: w.restarts,
        // As the worker itself reports it (absent while it is being replaced).
        generation: status?.generation, connections: status?.connections,
      })),
    },
  };
}

/** The primary's /plugins entries, each with its connections, traps and current flag per worker. */
export async function pluginsWithWorkers(own: ReadonlyArray<Record<string, unknown>>, workers: WorkerPool): Promise<unknown> {
  const statuses = await workers.statuses();
  // Older generations still serving connections live only in the workers (the primary, which
  // has no connections, let them go): they are listed too, from the workers' reports.
  const key = (p: { name: unknown; kind: unknown; generation: unknown }) => `${p.kind}\u0000${p.name}\u0000${p.generation}`;
  const listed = new Set(own.map((p) => key({ name: p.name, kind: p.kind, generation: p.generation })));
  const older = new Map<string, Record<string, unknown>>();
  for (const w of statuses) {
    for (const q of w.status?.plugins ?? []) {
      if (!listed.has(key(q)) && !older.has(key(q))) older.set(key(q), { name: q.name, kind: q.kind, generation: q.generation, current: false });
    }
  }
  return [...own, ...older.values()].map((p) => {
    const per = statuses.map((w) => {
      const mine = w.status?.plugins.filter((q) => q.name === p.name && q.kind === p.kind && q.generation === p.generation) ?? [];
      return {
        worker: w.worker, config_generation: w.status?.generation, current: mine.some((q) => q.current),
        connections: mine.reduce((n, q) => n + q.connections, 0), traps: mine.reduce((n, q) => n + q.traps, 0),
        instance_recycles: mine.reduce((n, q) => n + q.instance_recycles, 0),
      };
    });
    return {
      ...p,
      connections: per.reduce((n, w) => n + w.connections, 0),
      traps: per.reduce((n, w) => n + w.traps, 0),
      instance_recycles: per.reduce((n, w) => n + w.instance_recycles, 0),
      workers: per,
    };
  });
}
