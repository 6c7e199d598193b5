import type { z } from 'zod';
import { validationProblems, type ValidationError, type ValidationIssue } from '../domain-errors.js';

/** Every problem zod found, as issues whose paths start at `prefix`. */
export function zodIssues(error: z.ZodError, prefix: (string | number)[] = []): ValidationIssue[] {
  return error.issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    // An unknown key is reported on its parent object; the key itself is the more useful pointer,
    // and each one is its own problem (a misspelt "atributes" next to an unknown top-level key).
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((key) => ({ path: [...path, key], message: `unknown key "${key}"` }));
    return [{ path, message: issue.message }];
  });
}

/** Every problem zod found, as one ValidationError whose paths start at `prefix`. */
export function fromZod(error: z.ZodError, prefix: (string | number)[] = []): ValidationError {
  const issues = zodIssues(error, prefix);
  return validationProblems(issues.length > 0 ? issues : [{ path: prefix, message: 'invalid' }]);
}

/**
 * Messages for the bounds and types zod checks, in the words of the API's fields
 * ("waitTimeoutSeconds must be at least 1") instead of zod's own ("Too small: expected number to
 * be >0"), which name neither the field nor the bound the way a client would fix it. Passed to
 * each parse of client input; a schema's own message still wins, and codes not listed keep zod's.
 */
export const inputMessages: z.core.ParseContext<z.core.$ZodIssue> = { error: inputMessage };

function inputMessage(issue: z.core.$ZodRawIssue): string | undefined {
  const field = issue.path && issue.path.length > 0 ? issue.path.map(String).join('.') : 'the value';
  switch (issue.code) {
    case 'too_small':
      return `${field} ${bound('at least', 'more than', issue.minimum, issue.inclusive, issue.origin)}`;
    case 'too_big':
      return `${field} ${bound('at most', 'less than', issue.maximum, issue.inclusive, issue.origin)}`;
    case 'invalid_type':
      if (issue.input === undefined) return `${field} is required`;
      return issue.expected === 'int'
        ? `${field} must be a whole number`
        : `${field} must be ${article(issue.expected)}`;
    default:
      return undefined;
  }
}

function bound(
  inclusiveWords: string,
  exclusiveWords: string,
  limit: number | bigint,
  inclusive: boolean | undefined,
  origin: string,
): string {
  const words = inclusive === false ? exclusiveWords : inclusiveWords;
  if (origin === 'string')
    return limit === 1 && words === 'at least' ? 'must not be empty' : `must have ${words} ${limit} characters`;
  if (origin === 'array' || origin === 'set') return `must have ${words} ${limit} ${limit === 1 ? 'item' : 'items'}`;
  return `must be ${words} ${limit}`;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
