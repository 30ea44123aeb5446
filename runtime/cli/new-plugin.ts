// `meltemi new codec|filter NAME [--dir DIR]`: scaffolds a plugin project of the author's own.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { codecSources } from './codec-template';
import { filterSources } from './filter-template';
import { PluginKind, pluginProject } from './plugin-project';

/** The meltemi package this CLI runs from (build/runtime/cli/ is three levels down). */
export const MELTEMI_DIR = resolve(__dirname, '..', '..', '..');
const NAME = /^[a-z][a-z0-9_-]{0,62}$/;

export function newPlugin(kind: PluginKind, name: string | undefined, dir: string | undefined, out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  const what = kind === 'codec' ? "the listener's protocol" : "a filters: entry's name";
  if (!name || !NAME.test(name)) {
    err.write(`meltemi new ${kind}: NAME must match ${NAME} (lower case, as ${what}), got ${JSON.stringify(name ?? '')}\n`);
    return 2;
  }
  const target = resolve(dir ?? name);
  if (target === MELTEMI_DIR || target.startsWith(MELTEMI_DIR + sep)) {
    // Its node_modules/meltemi would be a link to a folder that contains it.
    err.write(`meltemi new ${kind}: ${target} is inside meltemi's own folder; a codec project lives beside it: --dir ${join('..', basename(target))}\n`);
    return 1;
  }
  if (existsSync(target) && readdirSync(target).length > 0) {
    err.write(`meltemi new ${kind}: ${target} exists and is not empty; nothing was written\n`);
    return 1;
  }
  const pkg = JSON.parse(readFileSync(join(MELTEMI_DIR, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const sources = kind === 'codec' ? codecSources(name, MELTEMI_DIR) : filterSources(name, MELTEMI_DIR);
  for (const file of pluginProject(kind, name, MELTEMI_DIR, pkg.dependencies.assemblyscript, sources)) {
    const path = join(target, file.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.text);
  }
  out.write(`created the ${kind} project ${target}\n  cd ${target} && npm install && npm test\n`);
  return 0;
}
