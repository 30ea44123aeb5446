// Where resources come from. The directory source reads YAML files (several documents each)
// and watches the folder; a Kubernetes watch can implement the same interface later.

import { watch, FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { readResource, Resource } from './resources';

export interface ResourceError {
  readonly file: string;
  readonly message: string;
}

export interface ResourceSnapshot {
  readonly resources: Resource[];
  readonly errors: ResourceError[];
}

export interface ResourceSource {
  /** Calls `onChange` with the first snapshot before resolving, then after every change. */
  start(onChange: (snapshot: ResourceSnapshot) => void): Promise<void>;
  stop(): void;
}

export class DirectorySource implements ResourceSource {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly dir: string, private readonly debounceMs = 100) {}

  async start(onChange: (snapshot: ResourceSnapshot) => void): Promise<void> {
    onChange(await this.read());
    // Editors and atomic renames produce bursts of events: wait for quiet, then re-read all.
    this.watcher = watch(this.dir, () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { void this.read().then(onChange); }, this.debounceMs);
    });
  }

  stop(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  async read(): Promise<ResourceSnapshot> {
    const resources: Resource[] = [];
    const errors: ResourceError[] = [];
    const files = (await readdir(this.dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
    for (const name of files) {
      const file = join(this.dir, name);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        errors.push({ file, message: (err as Error).message });
        continue;
      }
      parseAllDocuments(text).forEach((doc, i) => {
        if (doc.errors.length > 0) {
          errors.push({ file, message: `document ${i}: ${doc.errors[0].message}` });
          return;
        }
        const value = doc.toJSON();
        if (value === null || value === undefined) return;
        try {
          const r = readResource(value, `document ${i}`);
          if (r) resources.push(r);
        } catch (err) {
          errors.push({ file, message: (err as Error).message });
        }
      });
    }
    return { resources, errors };
  }
}
