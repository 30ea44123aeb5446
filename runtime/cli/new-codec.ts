// `meltemi new codec NAME [--dir DIR]`: scaffolds a codec project of the author's own.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { codecProject } from './codec-template';

/** The meltemi package this CLI runs from (build/runtime/cli/ is three levels down). */
export const MELTEMI_DIR = resolve(__dirname, '..', '..', '..');
const NAME = /^[a-z][a-z0-9_-]{0,62}$/;

export function newCodec(name: string | undefined, dir: string | undefined, out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  if (!name || !NAME.test(name)) {
    err.write(`meltemi new codec: NAME must match ${NAME} (lower case, as the listener's protocol), got ${JSON.stringify(name ?? '')}\n`);
    return 2;
  }
  const target = resolve(dir ?? name);
  if (target === MELTEMI_DIR || target.startsWith(MELTEMI_DIR + sep)) {
    // Its node_modules/meltemi would be a link to a folder that contains it.
    err.write(`meltemi new codec: ${target} is inside meltemi's own folder; a codec project lives beside it: --dir ${join('..', basename(target))}\n`);
    return 1;
  }
  if (existsSync(target) && readdirSync(target).length > 0) {
    err.write(`meltemi new codec: ${target} exists and is not empty; nothing was written\n`);
    return 1;
  }
  const pkg = JSON.parse(readFileSync(join(MELTEMI_DIR, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
  for (const file of codecProject(name, MELTEMI_DIR, { meltemi: pkg.version, assemblyscript: pkg.dependencies.assemblyscript })) {
    const path = join(target, file.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.text);
  }
  out.write(`created the codec project ${target}\n  cd ${target} && npm install && npm test\n`);
  return 0;
}
