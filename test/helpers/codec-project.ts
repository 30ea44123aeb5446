// A codec project as `meltemi new codec` creates it, in a temporary folder, with node_modules
// linked to this checkout instead of installed (tests run offline): what `npm install` would
// give it — meltemi, AssemblyScript and the asc binary.

import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MELTEMI_BIN, ROOT } from './paths';

export function newCodecProject(name: string, kind: 'codec' | 'filter' = 'codec'): { dir: string; created: SpawnSyncReturns<string> } {
  const dir = join(mkdtempSync(join(tmpdir(), `meltemi-${kind}-`)), `${name}-${kind}`);
  const created = spawnSync(process.execPath, [MELTEMI_BIN, 'new', kind, name, '--dir', dir], { encoding: 'utf8' });
  if (created.status !== 0) return { dir, created };
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(ROOT, join(dir, 'node_modules', 'meltemi'), 'dir');
  symlinkSync(join(ROOT, 'node_modules', 'assemblyscript'), join(dir, 'node_modules', 'assemblyscript'), 'dir');
  symlinkSync(join('..', 'assemblyscript', 'bin', 'asc.js'), join(dir, 'node_modules', '.bin', 'asc'));
  return { dir, created };
}

/** `npm test` in the project: its own build script and its own tests. */
export function npmTest(dir: string): SpawnSyncReturns<string> {
  return spawnSync('npm', ['test'], { cwd: dir, encoding: 'utf8', timeout: 180_000 });
}
