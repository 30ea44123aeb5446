// Regular expressions that meet network data run in linear time: RE2's dialect through re2js (a
// pure-JS port of RE2), never V8's backtracking engine. Routes say `google_re2`, so RE2 is also
// the dialect users expect: (?i) and (?P<name>…) are valid, lookarounds and backreferences are
// not. Patterns are bounded by RE2's program size (Envoy's max_program_size), subjects by length.

import { RE2JS } from 're2js';

/** Largest compiled program accepted (Envoy's re2.max_program_size is 100 by default; meltemi's routes allow more). */
export const MAX_PROGRAM_SIZE = 1000;
/** Longest pattern text accepted. */
export const MAX_PATTERN_LENGTH = 4096;
/**
 * Values longer than this do not match a pattern. re2js is linear but costs 20-100 ns per
 * character (1-8 ms for 60 KB, measured): a routing key is short, and a 60 KB one must not buy
 * a client milliseconds of the proxy's time per request.
 */
export const MAX_SUBJECT_LENGTH = 4096;

export interface SafeRegex {
  readonly source: string;
  /** True when the whole of `value` matches (Envoy's safe_regex semantics). */
  fullMatch(value: string): boolean;
}

/** The reason `pattern` is not an acceptable RE2 pattern, or undefined when it is. */
export function regexProblem(pattern: string): string | undefined {
  try {
    compileSafeRegex(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Compiles `pattern`; throws an Error whose message says what is wrong in RE2 terms. */
export function compileSafeRegex(pattern: string): SafeRegex {
  if (pattern.length > MAX_PATTERN_LENGTH) throw new Error(`pattern is ${pattern.length} characters, over ${MAX_PATTERN_LENGTH}`);
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    throw new Error(`invalid RE2 regular expression: ${(err as Error).message}`);
  }
  const size = re.programSize();
  if (size > MAX_PROGRAM_SIZE) throw new Error(`RE2 program size ${size} is over the limit of ${MAX_PROGRAM_SIZE}; simplify the pattern`);
  return {
    source: pattern,
    fullMatch: (value) => value.length <= MAX_SUBJECT_LENGTH && re.matches(value),
  };
}
