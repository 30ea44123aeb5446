// A light parse of a statement's text, as Envoy's mysql_proxy does for RBAC and stats: the verb
// (first keyword) and the first table it names. Not a SQL parser: comments, quotes and a few
// modifiers are skipped; anything unusual just yields no table. Bounded by SCAN_LIMIT bytes.

import { Bytes } from "../../sdk/assembly";

const SCAN_LIMIT: i32 = 16 * 1024;

export let verbAt: i32 = -1;
export let verbLen: i32 = 0;
export let tableAt: i32 = -1;
export let tableLen: i32 = 0;

let b: Bytes = new Bytes();
let limit: i32 = 0;
let pos: i32 = 0;
let tokAt: i32 = 0;
let tokLen: i32 = 0;
/** The last token was a backquoted or quoted identifier (its bytes exclude the quotes). */
let tokQuoted: bool = false;

@inline function isWordByte(c: u32): bool {
  return c - 97 < 26 || c - 65 < 26 || c - 48 < 10 || c == 95 || c == 36 || c >= 0x80;
}

@inline function isSpace(c: u32): bool {
  return c == 32 || c - 9 < 5;
}

/** Moves past spaces and comments. */
function skipBlank(): void {
  while (pos < limit) {
    const c = <u32>b.at(pos);
    if (isSpace(c)) { pos++; continue; }
    if (c == 47 /* / */ && pos + 1 < limit && b.at(pos + 1) == 42 /* * */) {
      pos += 2;
      while (pos + 1 < limit && !(b.at(pos) == 42 && b.at(pos + 1) == 47)) pos++;
      pos += 2;
      continue;
    }
    if ((c == 35 /* # */) || (c == 45 /* - */ && pos + 2 < limit && b.at(pos + 1) == 45 && isSpace(<u32>b.at(pos + 2)))) {
      while (pos < limit && b.at(pos) != 10) pos++;
      continue;
    }
    return;
  }
}

/** Reads the next token: a word, a quoted name, or one other byte. False at the end. */
function next(): bool {
  skipBlank();
  if (pos >= limit) return false;
  const c = <u32>b.at(pos);
  tokQuoted = false;
  if (c == 96 /* ` */ || c == 34 /* " */ || c == 39 /* ' */) {
    const start = pos + 1;
    let i = start;
    while (i < limit && <u32>b.at(i) != c) i++;
    tokAt = start;
    tokLen = i - start;
    tokQuoted = c != 39; // a string literal is not a name
    pos = i + 1;
    if (c == 39) { tokLen = 0; }
    return true;
  }
  if (isWordByte(c)) {
    tokAt = pos;
    while (pos < limit && isWordByte(<u32>b.at(pos))) pos++;
    tokLen = pos - tokAt;
    return true;
  }
  tokAt = pos;
  tokLen = 1;
  pos++;
  return true;
}

@inline function tokIs(word: string): bool {
  return !tokQuoted && b.equalsLower(tokAt, tokLen, word);
}

/** The table name at the current token: `t`, `db.t` or quoted parts; records the last part. */
function takeTable(): void {
  if (tokLen == 0 || (!tokQuoted && !isWordByte(<u32>b.at(tokAt)))) return;
  tableAt = tokAt;
  tableLen = tokLen;
  // db.table: the table is the part after the dot.
  const save = pos;
  skipBlank();
  if (pos < limit && b.at(pos) == 46 /* . */) {
    pos++;
    if (next() && tokLen > 0) { tableAt = tokAt; tableLen = tokLen; }
  } else {
    pos = save;
  }
}

/** Finds the next FROM outside parentheses' first level and takes the table after it. */
function tableAfterFrom(): void {
  let depth = 0;
  while (next()) {
    if (tokLen == 1 && !tokQuoted) {
      const c = b.at(tokAt);
      if (c == 40) depth++;
      else if (c == 41 && depth > 0) depth--;
      continue;
    }
    if (depth == 0 && tokIs("from")) {
      if (!next()) return;
      if (tokLen == 1 && b.at(tokAt) == 40) return; // a derived table: no name
      takeTable();
      return;
    }
  }
}

/** Skips `words` modifiers (LOW_PRIORITY, IGNORE …) then takes the table. */
function tableAfterModifiers(): void {
  while (next()) {
    if (tokIs("low_priority") || tokIs("delayed") || tokIs("high_priority") || tokIs("ignore") || tokIs("into")
      || tokIs("quick") || tokIs("table") || tokIs("temporary") || tokIs("if") || tokIs("not") || tokIs("exists")) continue;
    takeTable();
    return;
  }
}

/** Parses the statement in [at, end) of `input`: verbAt/verbLen and tableAt/tableLen (-1: none). */
export function parseStatement(input: Bytes, at: i32, end: i32): void {
  b = input;
  limit = end - at > SCAN_LIMIT ? at + SCAN_LIMIT : end;
  pos = at;
  verbAt = -1; verbLen = 0; tableAt = -1; tableLen = 0;
  // A statement may open with parentheses: "(SELECT …) UNION …".
  while (next()) {
    if (tokLen == 1 && !tokQuoted && b.at(tokAt) == 40) continue;
    break;
  }
  if (pos > limit || tokQuoted || tokLen == 0 || !isWordByte(<u32>b.at(tokAt))) return;
  verbAt = tokAt;
  verbLen = tokLen;
  if (tokIs("select") || tokIs("delete") || tokIs("with")) {
    tableAfterFrom();
  } else if (tokIs("insert") || tokIs("replace") || tokIs("update") || tokIs("truncate")) {
    tableAfterModifiers();
  } else if (tokIs("create") || tokIs("drop") || tokIs("alter")) {
    // Only for tables: CREATE [TEMPORARY] TABLE, DROP TABLE, ALTER TABLE.
    const save = pos;
    if (next() && tokIs("temporary")) next();
    if (tokIs("table")) tableAfterModifiers(); else pos = save;
  } else if (tokIs("describe") || tokIs("desc") || tokIs("explain")) {
    const save = pos;
    if (next() && (tokQuoted || !(tokIs("select") || tokIs("insert") || tokIs("update") || tokIs("delete") || tokIs("format") || tokIs("extended")))) takeTable();
    else pos = save;
  } else if (tokIs("use")) {
    if (next()) takeTable(); // the database, reported as `database`
  }
}
