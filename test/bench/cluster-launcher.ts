// The alternative to worker threads, for the workers benchmark: `node:cluster` forks N processes,
// each a one-worker `meltemi run`, and shares their listening sockets (the primary accepts and
// passes each connection round-robin with SCHED_RR, or every process accepts with SCHED_NONE).
// Usage: node cluster-launcher.js CONFIG N rr|none. Prints "pids P,P,…" once all listen.

import cluster from 'node:cluster';
import { main } from '../../runtime/cli/main';

const [config, n, policy] = process.argv.slice(2);

if (cluster.isPrimary) {
  cluster.schedulingPolicy = policy === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  const workers = Array.from({ length: Number(n) }, () => cluster.fork());
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === workers.length) process.stdout.write(`pids ${workers.map((w) => w.process.pid).join(',')}\n`);
  });
  const stop = () => { for (const w of workers) w.process.kill('SIGTERM'); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} else {
  void main(['run', '--config', config, '--workers', '1']).then((code) => process.exit(code));
}
