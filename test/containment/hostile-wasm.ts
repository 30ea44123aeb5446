// Hostile variants of a valid plugin, built with Binaryen at test time: a start function that
// never returns, a module bloated with code, a memory declared larger than any cap.

type Binaryen = any; // eslint-disable-line @typescript-eslint/no-explicit-any
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<{ default: Binaryen }>;

async function edit(bytes: Uint8Array, change: (b: Binaryen, mod: Binaryen) => void): Promise<Buffer> {
  const b = (await importEsm('binaryen')).default;
  const mod = b.readBinary(bytes);
  try {
    mod.setFeatures(b.Features.All);
    change(b, mod);
    if (!mod.validate()) throw new Error('the hostile module does not validate');
    return Buffer.from(mod.emitBinary());
  } finally {
    mod.dispose();
  }
}

/** `bytes` plus a Wasm start function that loops forever (it runs at instantiation). */
export function withStartLoop(bytes: Uint8Array): Promise<Buffer> {
  return edit(bytes, (b, mod) => {
    mod.addFunction('hostile_spin', b.none, b.none, [], mod.loop('spin', mod.br('spin')));
    mod.setStart(mod.getFunction('hostile_spin'));
  });
}

/** `bytes` plus `count` exported functions of straight-line arithmetic (slow to compile and meter). */
export function bloated(bytes: Uint8Array, count: number, bodySize = 400): Promise<Buffer> {
  return edit(bytes, (b, mod) => {
    for (let f = 0; f < count; f++) {
      let e = mod.local.get(0, b.i32);
      for (let i = 0; i < bodySize; i++) e = mod.i32.add(mod.i32.mul(e, mod.i32.const(i + f)), mod.i32.const(i));
      const name = `hostile_bulk_${f}`;
      mod.addFunction(name, b.createType([b.i32]), b.i32, [], mod.block(null, [mod.loop('l', mod.br_if('l', mod.i32.eqz(mod.local.get(0, b.i32)))), e], b.i32));
      mod.addFunctionExport(name, name);
    }
  });
}

/** `bytes` with its memory's initial size set to `pages` (and no maximum). */
export function withInitialPages(bytes: Uint8Array, pages: number): Buffer {
  const leb = (n: number) => {
    const out: number[] = [];
    do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n);
    return out;
  };
  let at = 8;
  while (at < bytes.length) {
    const id = bytes[at];
    let size = 0;
    let shift = 0;
    let p = at + 1;
    for (;;) { const b = bytes[p++]; size |= (b & 0x7f) << shift; shift += 7; if (!(b & 0x80)) break; }
    if (id === 5) {
      const content = [1, 0, ...leb(pages)];
      return Buffer.concat([Buffer.from(bytes.subarray(0, at)), Buffer.from([5, ...leb(content.length), ...content]), Buffer.from(bytes.subarray(p + size))]);
    }
    at = p + size;
  }
  throw new Error('no memory section');
}
