// Holds the plugin's declaration and its codec factory, set by the plugin's top-level code
// (which runs in `_initialize`) and read by the ABI exports.

import { Codec, CodecInfo } from "./codec";

export let registeredInfo: CodecInfo | null = null;
export let registeredFactory: (() => Codec) | null = null;

/**
 * Declares this module a codec. `factory` is called once per connection context; a stateless codec
 * may return the same instance every time.
 */
export function registerCodec(info: CodecInfo, factory: () => Codec): void {
  registeredInfo = info;
  registeredFactory = factory;
}
