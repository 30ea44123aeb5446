// Counters kept in maps by key ("<listener>\u0000<reason>" and the like), read at scrape time.

/** Adds one to `key`'s count in `counts`. */
export function countIn(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
