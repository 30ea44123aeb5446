// Reads a YAML config file and validates it; relative paths resolve against the file's folder.

import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from '../core/errors';
import type { Config } from './types';
import { validateConfig } from './validate';

export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError('(file)', `cannot read ${file}: ${(err as Error).message}`);
  }
  return parseConfig(text, dirname(resolve(file)));
}

export function parseConfig(text: string, baseDir: string): Config {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new ConfigError('(yaml)', (err as Error).message);
  }
  return validateConfig(raw, baseDir);
}
