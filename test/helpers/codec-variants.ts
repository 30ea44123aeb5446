// Builds of the Redis codec that differ observably: each adds the metadata `build = <tag>` to
// every request. Compiled at test time from the real codec source with asc.

import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './paths';

export function buildRedisVariant(tag: string): string {
  const dir = join(ROOT, 'build', 'test-variants', `redis-${tag}`);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(join(ROOT, 'plugins', 'redis')).filter((n) => n.endsWith('.ts'))) {
    let src = readFileSync(join(ROOT, 'plugins', 'redis', f), 'utf8').replaceAll('"../../sdk/assembly', '"../../../sdk/assembly');
    if (f === 'index.ts') {
      const patched = src.replace(/private describe\(input: Bytes, frame: Frame\): (\w+) \{/, (head) => `${head}\n    frame.putNamed("build", "${tag}");`);
      if (patched === src) throw new Error('codec-variants: describe() of the Redis codec not found; update the patch');
      src = patched;
      src = src.replace('"redis", "redis", "1.0.0"', `"redis", "redis", "1.0.0-${tag}"`);
    }
    writeFileSync(join(dir, f), src);
  }
  const out = join(dir, 'redis.wasm');
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'assemblyscript', 'bin', 'asc.js'), join(dir, 'index.ts'), '--config', join(ROOT, 'asconfig.json'), '--target', 'release', '-o', out], { cwd: ROOT });
  return out;
}

export { cpSync };
