// Where resources come from. The directory source reads YAML files (several documents each)
// and watches the folder; a Kubernetes watch can implement the same interface later.

import { watch, FSWatcher } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { readRegularFile } from '../core/bounded-file';
import { readResource, Resource, resourceIdentity } from './resources';

export interface ResourceError {
  readonly file: string;
  readonly message: string;
  /** The document in the file, when the file itself was read and parsed. */
  readonly document?: number;
  /** `Kind/namespace/name` of the failing resource, when that much could be read. */
  readonly key?: string;
  /** The host a failing MetaRouter routes for, when that much could be read. */
  readonly host?: string;
  readonly kind?: string;
}

/** A resource and where it was read from (`file`, document index). */
export interface Located {
  readonly resource: Resource;
  readonly file: string;
  readonly document: number;
}

export interface ResourceSnapshot {
  readonly resources: Located[];
  readonly errors: ResourceError[];
  /** Valid fields that have no effect in meltemi, by file (`document 0.spec.exportTo: …`). */
  readonly notes: ResourceError[];
  /** The directory itself could not be read: the snapshot says nothing about resources. */
  readonly unreadable?: boolean;
}

export interface ResourceSource {
  /** Calls `onChange` with the first snapshot before resolving, then after every change. */
  start(onChange: (snapshot: ResourceSnapshot) => void): Promise<void>;
  stop(): void;
}

/** Largest resource file read; a bigger one is reported and skipped. */
export const MAX_RESOURCE_FILE_BYTES = 4 * 1024 * 1024;
/** YAML aliases expanded per document at most (an alias bomb is an error, not a hang). */
const MAX_ALIAS_COUNT = 1000;
/** How often a directory that went away is looked for again. */
const REWATCH_MS = 1000;

export class DirectorySource implements ResourceSource {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private rewatch: NodeJS.Timeout | undefined;
  private stopped = false;
  private started = false;

  constructor(readonly dir: string, private readonly debounceMs = 100) {}

  async start(onChange: (snapshot: ResourceSnapshot) => void): Promise<void> {
    onChange(await this.read());
    this.watch(onChange);
    this.started = true;
  }

  /**
   * Editors and atomic renames produce bursts of events: wait for quiet, then re-read all. If
   * the directory goes away the watcher errors: that is reported as a snapshot error (the last
   * good resources keep serving) and the directory is looked for until it is back.
   */
  private watch(onChange: (snapshot: ResourceSnapshot) => void): void {
    if (this.stopped) return;
    const lost = () => {
      // The directory is gone (a watcher on it sees nothing more): look for it again later.
      this.watcher?.close();
      this.watcher = undefined;
      clearTimeout(this.rewatch);
      this.rewatch = setTimeout(() => this.watch(onChange), REWATCH_MS);
    };
    const reread = () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        void this.read().then((snapshot) => {
          if (snapshot.unreadable) lost();
          onChange(snapshot);
        });
      }, this.debounceMs);
    };
    try {
      this.watcher = watch(this.dir, reread);
    } catch {
      lost();
      return;
    }
    this.watcher.on('error', () => { lost(); reread(); });
    // After a re-watch, changes made while nothing watched are picked up now.
    if (this.started) reread();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.rewatch);
    this.watcher?.close();
  }

  /** Never throws: whatever is wrong with the directory or a file is in `errors`. */
  async read(): Promise<ResourceSnapshot> {
    const resources: Located[] = [];
    const errors: ResourceError[] = [];
    const notes: ResourceError[] = [];
    let files: string[];
    try {
      files = (await readdir(this.dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
    } catch (err) {
      return { resources, notes, errors: [{ file: this.dir, message: `cannot read the resource directory: ${(err as Error).message}` }], unreadable: true };
    }
    for (const name of files) {
      const file = join(this.dir, name);
      let text: string;
      try {
        text = (await readRegularFile(file, MAX_RESOURCE_FILE_BYTES)).toString('utf8');
      } catch (err) {
        errors.push({ file, message: (err as Error).message.replace(`${file}: `, '') });
        continue;
      }
      let docs;
      try {
        docs = parseAllDocuments(text);
      } catch (err) {
        errors.push({ file, message: (err as Error).message });
        continue;
      }
      docs.forEach((doc, i) => {
        if (doc.errors.length > 0) {
          errors.push({ file, document: i, message: `document ${i}: ${doc.errors[0].message}` });
          return;
        }
        let value: unknown;
        try {
          value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
          if (value === null || value === undefined) return;
          const found: string[] = [];
          const r = readResource(value, `document ${i}`, found);
          if (r) resources.push({ resource: r, file, document: i });
          for (const message of found) notes.push({ file, document: i, message });
        } catch (err) {
          const { key, host, kind } = resourceIdentity(value);
          errors.push({ file, document: i, key, host, kind, message: (err as Error).message.startsWith('document ') ? (err as Error).message : `document ${i}: ${(err as Error).message}` });
        }
      });
    }
    return { resources, errors, notes };
  }
}
