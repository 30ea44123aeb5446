// `npm run fuzz -- [--frames N] [--seed S] [codec…]`: long fuzzing runs. Inputs that break an
// invariant are saved under test/fixtures/fuzz/<codec>/ (commit them: the test suite replays them).
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ConsoleLogger } from '../../runtime/core/logger';
import { CodecPlugin } from '../../runtime/codec/codec-plugin';
import { compilePlugin } from '../../runtime/plugin/plugin-loader';
import { Corpus, dubboCorpus, memcachedCorpus, redisCorpus, thriftCorpus } from './corpus';
import { mysqlCorpus } from './mysql-corpus';
import { tarsCorpus } from './tars-corpus';
import { zookeeperCorpus } from './zookeeper-corpus';
import { fuzzCodec } from './engine';
import { PLUGIN_DIR, ROOT } from '../helpers/paths';

const CORPORA: Record<string, () => Corpus> = { redis: redisCorpus, dubbo: dubboCorpus, thrift: thriftCorpus, mysql: mysqlCorpus, memcached: memcachedCorpus, tars: tarsCorpus, zookeeper: zookeeperCorpus };

const USAGE = `usage: npm run fuzz -- [--frames N] [--seed S] [codec…]
  codecs: ${Object.keys(CORPORA).join(', ')} (default: all)
  --frames N   mutated frames per codec (default 2000000)
  --seed S     the random seed (default: from the clock; printed, so a run can be repeated)
Inputs that break an invariant are saved under test/fixtures/fuzz/<codec>/.
`;

function usage(problem: string | undefined): never {
  if (problem) process.stderr.write(`fuzz: ${problem}\n`);
  (problem ? process.stderr : process.stdout).write(USAGE);
  process.exit(problem ? 2 : 0);
}

let parsed;
try {
  parsed = parseArgs({ allowPositionals: true, options: { frames: { type: 'string' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
} catch (err) {
  usage((err as Error).message);
}
const { values, positionals } = parsed;
if (values.help) usage(undefined);
const frames = Number(values.frames ?? 2_000_000);
const seed = Number(values.seed ?? (Date.now() & 0x7fffffff));
if (!Number.isInteger(frames) || frames < 1) usage(`--frames ${values.frames} is not a positive integer`);
if (!Number.isInteger(seed)) usage(`--seed ${values.seed} is not an integer`);
const codecs = positionals.filter((p) => p !== '--');
const unknown = codecs.filter((c) => !CORPORA[c]);
if (unknown.length) usage(`unknown codec(s): ${unknown.join(', ')}`);
let failed = 0;
for (const name of codecs.length ? codecs : Object.keys(CORPORA)) {
  const logger = new ConsoleLogger('silent');
  const file = join(PLUGIN_DIR, `${name}.wasm`);
  const plugin = new CodecPlugin(compilePlugin(file, readFileSync(file), logger), logger);
  const t0 = Date.now();
  const stats = fuzzCodec(plugin, CORPORA[name](), { frames, seed, saveDir: join(ROOT, 'test', 'fixtures', 'fuzz') });
  process.stdout.write(`${name}: seed ${seed}, ${stats.frames} frames, ${stats.decoded} decoded, ${stats.protocolErrors} protocol errors, ${stats.failures.length} failures, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  for (const f of stats.failures.slice(0, 10)) process.stdout.write(`  ${f.side}: ${f.error.split('\n')[0]} -> ${f.file}\n`);
  failed += stats.failures.length;
}
process.exit(failed ? 1 : 0);
