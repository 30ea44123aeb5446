// A Redis load for the drain tests, run inside a network namespace as its own process:
// `node redis-load.js HOST PORT CLIENTS STOP_FILE`. Each of CLIENTS ioredis connections runs
// GETs of drain:key (which must hold "value" on every server) back to back until STOP_FILE exists,
// checking every reply; prints {ok, failed, errors} as JSON.

import { existsSync } from 'node:fs';
import Redis from 'ioredis';

async function main(): Promise<void> {
  const [host, port, clients, stopFile] = process.argv.slice(2);
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  console.log('load running');
  await Promise.all(Array.from({ length: Number(clients) }, async () => {
    // No retries of its own: what fails here failed through the proxies.
    // RESP2 and no CLIENT SETINFO: HELLO 3 and CLIENT set connection state, which pins a client to one pod's
    // connection (meltemi never moves such a client silently), and a drain of that pod then ends the client's connection.
    const r = new Redis({ host, port: Number(port), maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, disableClientInfo: true, protocol: 2 });
    while (!existsSync(stopFile)) {
      try {
        const v = await r.get('drain:key');
        if (v === 'value') ok++;
        else {
          failed++;
          if (errors.length < 10) errors.push(`unexpected reply ${String(v)}`);
        }
      } catch (err) {
        failed++;
        if (errors.length < 10) errors.push((err as Error).message);
      }
    }
    r.disconnect();
  }));
  process.stdout.write(`${JSON.stringify({ ok, failed, errors })}\n`);
}

main().catch((err: Error) => {
  process.stdout.write(`${JSON.stringify({ ok: 0, failed: -1, errors: [err.message] })}\n`);
});
