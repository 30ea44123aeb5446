// Reading files that come from outside (plugins, control-plane resources, tokens). A name in a
// watched directory can be a symlink to /dev/zero, a FIFO or a 10 GB file: only regular files are
// read, never more than `maxBytes`, and a FIFO cannot block the open (O_NONBLOCK).

import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { MeltemiError } from './errors';

export class FileRejectedError extends MeltemiError {
  constructor(readonly file: string, message: string, options?: { cause?: unknown }) {
    super('MELTEMI_FILE_REJECTED', `${file}: ${message}`, options);
    this.name = 'FileRejectedError';
  }
}

/**
 * The whole content of a regular file of at most `maxBytes`. Symlinks are followed (Kubernetes
 * ConfigMap volumes are made of them), but what they point to must be a regular file too.
 */
export async function readRegularFile(file: string, maxBytes: number): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw new FileRejectedError(file, `cannot open: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new FileRejectedError(file, `not a regular file (${kindOf(st)}); only regular files are read`);
    if (st.size > maxBytes) throw new FileRejectedError(file, `is ${st.size} bytes, over the ${maxBytes}-byte limit`);
    // The size can change between stat and read (a file still being written): read at most one
    // byte past the limit, so growth is noticed without reading it all.
    const buf = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(st.size, 0) + 1));
    let filled = 0;
    for (;;) {
      if (filled === buf.length) break;
      const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > maxBytes) throw new FileRejectedError(file, `grew past the ${maxBytes}-byte limit while being read`);
    if (filled === buf.length && filled > st.size) throw new FileRejectedError(file, 'changed while being read');
    return buf.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}
