// The domain's errors. Services return them inside a Result; the GraphQL layer maps each `kind`
// to a typed error of its own, so every member carries what a client needs to act on it.

export interface ValidationError {
  kind: 'ValidationError';
  /** Path of the offending field, e.g. ['config', 'services', 0, 'bindings', 1, 'port']. */
  path: (string | number)[];
  message: string;
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
});

export const notFound = (entity: NotFoundError['entity'], id: number): NotFoundError => ({
  kind: 'NotFoundError',
  entity,
  id,
  message: `${entity} ${id} does not exist`,
});

export const notAuthorized = (message: string): NotAuthorizedError => ({ kind: 'NotAuthorizedError', message });

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
    this.error = { kind: 'IllegalTransitionError', entity, id, from, to, message };
  }
}
