import type { z } from 'zod';
import { validationError, type ValidationError } from '../allocator/errors.js';

/** The first problem zod found, as a ValidationError whose path starts at `prefix`. */
export function fromZod(error: z.ZodError, prefix: (string | number)[] = []): ValidationError {
  const issue = error.issues[0];
  if (!issue) return validationError(prefix, 'invalid');
  // An unknown key is reported on its parent object; the key itself is the more useful pointer.
  const key = issue.code === 'unrecognized_keys' ? issue.keys.slice(0, 1) : [];
  const path = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p)), ...key];
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : '';
  return validationError(path, `${issue.message}${more}`);
}
