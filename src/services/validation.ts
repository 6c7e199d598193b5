import type { z } from 'zod';
import { validationProblems, type ValidationError, type ValidationIssue } from '../allocator/errors.js';

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
