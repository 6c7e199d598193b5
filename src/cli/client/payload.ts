import { CliError, ExitCode } from '../errors.js';

/** The error members every mutation result union has; see CliError in operations/fragments.graphql. */
type ErrorMember = {
  __typename: 'ValidationError' | 'NotFoundError' | 'NotAuthorizedError' | 'ConflictError' | 'IllegalTransitionError';
  message: string;
  path?: string[];
  problems?: { path: string[]; message: string }[];
  holders?: { key: string }[];
};

type Member = { __typename: string };

/**
 * The flag a command reads each input field from, so that a refusal names what the user typed
 * (`--blueprint: blueprint 99 does not exist`) rather than the API's field (`blueprintIds.0`).
 */
export type FlagOfField = Readonly<Record<string, string>>;

/**
 * Mutations answer with a payload or a typed error; this returns the payload and turns the error
 * into a message that names the offending input where the server said which.
 */
export function payloadOf<T extends Member, P extends T['__typename']>(
  result: T,
  payloadType: P,
  flags: FlagOfField = {},
): Extract<T, { __typename: P }> {
  if (result.__typename === payloadType) return result as Extract<T, { __typename: P }>;
  throw mutationError(result as unknown as ErrorMember, flags);
}

export function mutationError(error: ErrorMember, flags: FlagOfField = {}): CliError {
  switch (error.__typename) {
    case 'ValidationError': {
      const problems = error.problems?.length ? error.problems : [{ path: error.path ?? [], message: error.message }];
      const lines = problems.map((p) => {
        const flag = p.path[0] === undefined ? undefined : flags[p.path[0]];
        if (flag) return `${flag}: ${p.message}`;
        return p.path.length ? `invalid ${p.path.join('.')}: ${p.message}` : p.message;
      });
      return new CliError(lines.join('\n'), ExitCode.usage);
    }
    case 'ConflictError': {
      const holders = error.holders?.map((h) => h.key).join(', ');
      return new CliError(holders ? `${error.message} (held: ${holders})` : error.message);
    }
    default:
      return new CliError(error.message);
  }
}
