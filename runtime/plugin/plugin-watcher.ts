// Watches the plugin directory and asks for a reload when .wasm files appear, change or go away.
// chokidar's awaitWriteFinish waits until a file stops growing, so a half-copied build is never
// loaded; atomic renames arrive as an add. Bursts are folded into one reload.

import type { FSWatcher } from 'chokidar';

export class PluginWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly dir: string, private readonly reload: () => void, private readonly settleMs = 50) {}

  async start(): Promise<void> {
    // Loaded when watching starts: worker threads and proxies that do not watch never need it.
    const { watch } = await import('chokidar');
    this.watcher = watch(this.dir, {
      ignoreInitial: true,
      depth: 0,
      awaitWriteFinish: { stabilityThreshold: this.settleMs, pollInterval: 10 },
    });
    const onEvent = (path: string) => {
      if (!path.endsWith('.wasm')) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(this.reload, 10);
    };
    this.watcher.on('add', onEvent).on('change', onEvent).on('unlink', onEvent);
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.watcher?.close();
  }
}
