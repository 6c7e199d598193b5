import { z } from 'zod';

// Messages of a blueprint config's fields that say where the field is, as the client wrote it
// ("services.0.bindings.1.address"), and what it must hold. A ValidationError's path says where
// too, but its message is read alone: one line of the command line's output, a log.

/** Where an issue is within the config (zod has prefixed the path by the time it asks). */
export const fieldOf = (issue: { path?: readonly PropertyKey[] | undefined }): string =>
  issue.path && issue.path.length > 0 ? issue.path.map(String).join('.') : 'the config';

/** The message for a field that is missing or of the wrong type: `expected` is what it must be. */
export const missingOr =
  (expected: string) =>
  (issue: { path?: readonly PropertyKey[] | undefined; input?: unknown }): string =>
    `${fieldOf(issue)} ${issue.input === undefined ? 'is required' : `must be ${expected}`}`;

/**
 * A non-empty string of at most `max` characters. Every string of a config is bounded: a config is
 * parsed on every allocation, returned by every read of its blueprint, and copied into the
 * resources it builds. `what` says what the field holds, in the messages.
 */
export function configText(max: number, what: string) {
  return z
    .string({ error: (issue) => `${missingOr('a string')(issue)} (${what})` })
    .min(1, { error: (issue) => `${fieldOf(issue)} must not be empty (${what})` })
    .max(max, { error: (issue) => `${fieldOf(issue)} must have at most ${max} characters (${what})` });
}
