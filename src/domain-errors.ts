// The domain's errors. Services return them inside a Result; the GraphQL layer maps each `kind`
// to a typed error of its own, so every member carries what a client needs to act on it.

/** One thing wrong with an input, where it is. */
export interface ValidationIssue {
  /** Path of the offending field, e.g. ['config', 'services', 0, 'bindings', 1, 'port']. */
  path: (string | number)[];
  message: string;
}

export interface ValidationError extends ValidationIssue {
  kind: 'ValidationError';
  /**
   * Every problem found, the first of which is `path` and `message`: fixing an input one
   * round-trip per typo is what made people give up on it.
   */
  problems: ValidationIssue[];
}

export interface NotFoundError {
  kind: 'NotFoundError';
  entity: 'lease' | 'resource' | 'blueprint' | 'authorization' | 'principal' | 'token' | 'credential';
  id: number;
  message: string;
}

export interface NotAuthorizedError {
  kind: 'NotAuthorizedError';
  message: string;
}

export interface IllegalTransitionError {
  kind: 'IllegalTransitionError';
  entity: 'lease' | 'resource';
  id: number;
  from: string;
  to: string;
  message: string;
}

export interface ConflictError {
  kind: 'ConflictError';
  message: string;
  /** Slot lock keys (or other names) that are in the way, with whoever holds them. */
  holders?: { key: string; leaseId: number | null; resourceId: number | null }[];
}

export type DomainError = ValidationError | NotFoundError | NotAuthorizedError | IllegalTransitionError | ConflictError;

export const validationError = (path: (string | number)[], message: string): ValidationError => ({
  kind: 'ValidationError',
  path,
  message,
  problems: [{ path, message }],
});

/** One error listing every problem (there must be at least one); the message sums them up. */
export function validationProblems(problems: readonly ValidationIssue[]): ValidationError {
  const [first, ...rest] = problems;
  if (!first) throw new Error('validationProblems needs at least one problem');
  const more = rest.length > 0 ? ` (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : '';
  return { kind: 'ValidationError', path: first.path, message: `${first.message}${more}`, problems: [...problems] };
}

export const notFound = (entity: NotFoundError['entity'], id: number): NotFoundError => ({
  kind: 'NotFoundError',
  entity,
  id,
  message: `${entity} ${id} does not exist`,
});

export const notAuthorized = (message: string): NotAuthorizedError => ({ kind: 'NotAuthorizedError', message });

/** A change the object's status does not allow; `message` says why in the domain's words. */
export const illegalTransition = (
  entity: IllegalTransitionError['entity'],
  id: number,
  from: string,
  to: string,
  message: string,
): IllegalTransitionError => ({ kind: 'IllegalTransitionError', entity, id, from, to, message });

export const conflict = (message: string, holders?: ConflictError['holders']): ConflictError =>
  holders ? { kind: 'ConflictError', message, holders } : { kind: 'ConflictError', message };

/**
 * Thrown, never returned, when code asks for a transition the state machine forbids: it is a bug
 * in the caller, and the transaction that asked must not commit.
 */
export class IllegalTransition extends Error {
  readonly error: IllegalTransitionError;
  constructor(entity: 'lease' | 'resource', id: number, from: string, to: string) {
    const message = `${entity} ${id} cannot go from ${from} to ${to}`;
    super(message);
    this.name = 'IllegalTransition';
    this.error = illegalTransition(entity, id, from, to, message);
  }
}
