// Node's Buffer has had latin1Slice since v0.x; undici relies on it on its hot path. It is faster
// than toString('latin1', …) because it skips argument normalisation.
declare global {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
    /** Writes `s` (one byte per char) at `offset`; returns the bytes written (access logs). */
    latin1Write(s: string, offset: number, length?: number): number;
  }
}
export {};
