// `meltemi run --config FILE` and `meltemi --help`.

import { parseArgs } from 'node:util';
import { loadConfigFile } from './config/load';
import { isMeltemiError } from './core/errors';
import { Meltemi } from './server';

const HELP = `meltemi — a layer-7 service-mesh proxy with WebAssembly protocol codecs

Usage:
  meltemi run --config FILE     start the proxy described by FILE (YAML; see docs/config.md)
  meltemi validate --config FILE  check FILE and print the effective config as JSON
  meltemi --help                this text

Signals: SIGINT/SIGTERM stop the proxy.`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  const [command] = parsed.positionals;
  if (parsed.values.help || !command) {
    process.stdout.write(`${HELP}\n`);
    return parsed.values.help ? 0 : 2;
  }
  if (command !== 'run' && command !== 'validate') {
    process.stderr.write(`unknown command "${command}"\n\n${HELP}\n`);
    return 2;
  }
  if (!parsed.values.config) {
    process.stderr.write(`meltemi ${command}: --config FILE is required\n`);
    return 2;
  }
  try {
    const config = await loadConfigFile(parsed.values.config);
    if (command === 'validate') {
      process.stdout.write(JSON.stringify(config, null, 2) + '\n');
      return 0;
    }
    const proxy = new Meltemi(config);
    await proxy.start();
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await proxy.stop();
    return 0;
  } catch (err) {
    process.stderr.write(`meltemi: ${isMeltemiError(err) ? `[${err.code}] ` : ''}${(err as Error).message}\n`);
    return 1;
  }
}
