// The WebAssembly JS API subset meltemi uses. TypeScript only ships these types in lib.dom, and a
// server build should not pull in the DOM; Node implements the same API.
declare global {
  namespace WebAssembly {
    interface ModuleExportDescriptor { name: string; kind: 'function' | 'table' | 'memory' | 'global' }
    interface ModuleImportDescriptor { module: string; name: string; kind: 'function' | 'table' | 'memory' | 'global' }
    class Module {
      constructor(bytes: BufferSource);
      static exports(module: Module): ModuleExportDescriptor[];
      static imports(module: Module): ModuleImportDescriptor[];
    }
    class Instance {
      constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
      readonly exports: Record<string, unknown>;
    }
    class Memory {
      constructor(descriptor: { initial: number; maximum?: number; shared?: boolean });
      readonly buffer: ArrayBuffer;
      grow(delta: number): number;
    }
    class Global {
      value: number | bigint;
    }
    class RuntimeError extends Error {}
    class CompileError extends Error {}
    function validate(bytes: BufferSource): boolean;
  }
  type BufferSource = ArrayBufferView | ArrayBuffer;
}
export {};
