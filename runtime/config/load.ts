// Reads a YAML config file and validates it; relative paths resolve against the file's folder.

import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from '../core/errors';
import type { Config } from './types';
import { checkConfig, validateConfig } from './validate';

export async function loadConfigFile(file: string): Promise<Config> {
  return parseConfig(await readConfigText(file), dirname(resolve(file)));
}

export function parseConfig(text: string, baseDir: string): Config {
  return validateConfig(parseYaml(text), baseDir);
}

/** Every problem in `file`, and the config as far as it could be read (see checkConfig). */
export async function checkConfigFile(file: string): Promise<{ config: Config | undefined; errors: ConfigError[] }> {
  try {
    return checkConfig(parseYaml(await readConfigText(file)), dirname(resolve(file)));
  } catch (err) {
    if (err instanceof ConfigError) return { config: undefined, errors: [...err.all] };
    throw err;
  }
}

async function readConfigText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError('(file)', `cannot read ${file}: ${(err as Error).message}`);
  }
}

function parseYaml(text: string): unknown {
  try {
    return parse(text);
  } catch (err) {
    throw new ConfigError('(yaml)', (err as Error).message);
  }
}
