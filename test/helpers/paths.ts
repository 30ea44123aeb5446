// Locations of build outputs, resolved from the compiled test file (build/test/helpers/).

import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..', '..');
export const PLUGIN_DIR = join(ROOT, 'build', 'plugins');
export const TEST_PLUGIN_DIR = join(ROOT, 'build', 'test-plugins');
export const REDIS_WASM = join(PLUGIN_DIR, 'redis.wasm');
export const MELTEMI_BIN = join(ROOT, 'bin', 'meltemi.js');
