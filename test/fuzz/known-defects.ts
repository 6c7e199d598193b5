/**
 * Server faults this fuzz test found that are not fixed yet. Each is reported (with a count) on
 * every run rather than failing it, so the test guards against new faults meanwhile; delete an
 * entry once its fix lands, and FUZZ_STRICT=1 ignores the whole list.
 */
export interface KnownDefect {
  id: string;
  /** Matched against "<category> <problem>" of a failure. */
  pattern: RegExp;
  what: string;
}

// Empty: every fault the fuzzer found is fixed. Keep the mechanism for the next one.
export const knownDefects: KnownDefect[] = [];

export function knownDefect(category: string, problem: string): KnownDefect | undefined {
  if (process.env['FUZZ_STRICT'] === '1') return undefined;
  return knownDefects.find((defect) => defect.pattern.test(`${category} ${problem}`));
}
