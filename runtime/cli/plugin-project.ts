// The files every plugin project `meltemi new` writes, outside this repository: package.json
// (meltemi as a file: dependency, AssemblyScript; build and test scripts), asconfig.json with the
// options meltemi's own plugins use, an editor tsconfig for AssemblyScript, .gitignore; plus the
// kind's own sources (codec-template.ts, filter-template.ts).

export interface TemplateFile { readonly path: string; readonly text: string }

export interface PluginSources {
  readonly index: string;
  readonly test: string;
  readonly readme: string;
}

export type PluginKind = 'codec' | 'filter';

export function pluginProject(kind: PluginKind, name: string, meltemiDir: string, assemblyscript: string, sources: PluginSources): TemplateFile[] {
  const asconfig = {
    // The options meltemi's own plugins are built with (ABI.md §1: _initialize, incremental runtime).
    options: { runtime: 'incremental', exportStart: '_initialize', initialMemory: 4, maximumMemory: 4096, noAssert: false },
    targets: { release: { outFile: `build/${name}.wasm`, optimizeLevel: 3, shrinkLevel: 0, converge: false } },
  };
  const pkg = {
    name: `${name}-${kind}`,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: { build: 'asc assembly/index.ts --config asconfig.json --target release', test: 'npm run build && node --test test/' },
    devDependencies: { meltemi: `file:${meltemiDir}`, assemblyscript },
  };
  return [
    { path: 'package.json', text: JSON.stringify(pkg, null, 2) + '\n' },
    { path: 'asconfig.json', text: JSON.stringify(asconfig, null, 2) + '\n' },
    { path: 'assembly/tsconfig.json', text: JSON.stringify({ extends: 'assemblyscript/std/assembly.json', include: ['./**/*.ts'] }, null, 2) + '\n' },
    { path: 'assembly/index.ts', text: sources.index },
    { path: `test/${name}.test.mjs`, text: sources.test },
    { path: '.gitignore', text: 'node_modules/\nbuild/\n' },
    { path: 'README.md', text: sources.readme },
  ];
}

export function pascal(name: string): string {
  return name.split(/[-_]/).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
}
