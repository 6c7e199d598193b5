// The typed errors a mutation can return. Services return a DomainError in a Result; `unwrap`
// turns it into one of these classes, which the Pothos errors plugin puts into the field's union.
import { GraphQLError } from 'graphql';
import type { DomainError } from '../services/index.js';
import { builder } from './builder.js';

export class ValidationProblem extends Error {
  constructor(
    message: string,
    readonly path: (string | number)[],
    readonly problems: { path: (string | number)[]; message: string }[],
  ) {
    super(message);
  }
}

export class NotFoundProblem extends Error {
  constructor(
    message: string,
    readonly entity: string,
    readonly id: number,
  ) {
    super(message);
  }
}

export class NotAuthorizedProblem extends Error {}

export class IllegalTransitionProblem extends Error {
  constructor(
    message: string,
    readonly entity: string,
    readonly id: number,
    readonly from: string,
    readonly to: string,
  ) {
    super(message);
  }
}

export class ConflictProblem extends Error {
  constructor(
    message: string,
    readonly holders: { key: string; leaseId: number | null; resourceId: number | null }[],
  ) {
    super(message);
  }
}

export const ErrorInterface = builder.interfaceRef<Error>('Error').implement({
  description: 'Something the caller can fix or act on; every typed error has a human-readable message.',
  fields: (t) => ({ message: t.exposeString('message') }),
});

const ValidationIssueRef = builder
  .objectRef<{ path: (string | number)[]; message: string }>('ValidationIssue')
  .implement({
    description: 'One thing wrong with an input.',
    fields: (t) => ({
      path: t.stringList({ resolve: (issue) => issue.path.map(String) }),
      message: t.exposeString('message'),
    }),
  });

builder.objectType(ValidationProblem, {
  name: 'ValidationError',
  description:
    'An input was wrong; `path` points at the (first) field, e.g. ["config", "services", 0, "bindings", 1, "port"], and `problems` lists every problem found.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    path: t.stringList({ resolve: (error) => error.path.map(String) }),
    problems: t.field({ type: [ValidationIssueRef], resolve: (error) => error.problems }),
  }),
});

builder.objectType(NotFoundProblem, {
  name: 'NotFoundError',
  interfaces: [ErrorInterface],
  fields: (t) => ({ entity: t.exposeString('entity'), databaseId: t.exposeInt('id') }),
});

builder.objectType(NotAuthorizedProblem, {
  name: 'NotAuthorizedError',
  description: 'The caller may not do this (not an admin, or not the owner).',
  interfaces: [ErrorInterface],
});

builder.objectType(IllegalTransitionProblem, {
  name: 'IllegalTransitionError',
  description: 'The object is in a status from which this is not possible.',
  interfaces: [ErrorInterface],
  fields: (t) => ({
    entity: t.exposeString('entity'),
    databaseId: t.exposeInt('id'),
    from: t.exposeString('from'),
    to: t.exposeString('to'),
  }),
});

export const SlotHolderRef = builder
  .objectRef<{ key: string; leaseId: number | null; resourceId: number | null }>('SlotHolder')
  .implement({
    fields: (t) => ({
      key: t.exposeString('key'),
      // Null for a lease the viewer may not see (hidden-leases.ts).
      leaseDatabaseId: t.int({
        nullable: true,
        resolve: async ({ leaseId }, _args, ctx) =>
          leaseId !== null && (await ctx.access.visible('Lease', leaseId)) ? leaseId : null,
      }),
      resourceDatabaseId: t.exposeInt('resourceId', { nullable: true }),
    }),
  });

builder.objectType(ConflictProblem, {
  name: 'ConflictError',
  description: 'Something else is in the way, e.g. a name already taken or a slot lock held.',
  interfaces: [ErrorInterface],
  fields: (t) => ({ holders: t.field({ type: [SlotHolderRef], resolve: (error) => error.holders }) }),
});

/** Every typed error a mutation may return. */
export const domainErrors = [
  ValidationProblem,
  NotFoundProblem,
  NotAuthorizedProblem,
  IllegalTransitionProblem,
  ConflictProblem,
] as const;

export function toProblem(error: DomainError): Error {
  switch (error.kind) {
    case 'ValidationError':
      return new ValidationProblem(error.message, error.path, error.problems);
    case 'NotFoundError':
      return new NotFoundProblem(error.message, error.entity, error.id);
    case 'NotAuthorizedError':
      return new NotAuthorizedProblem(error.message);
    case 'IllegalTransitionError':
      return new IllegalTransitionProblem(error.message, error.entity, error.id, error.from, error.to);
    case 'ConflictError':
      return new ConflictProblem(error.message, error.holders ?? []);
  }
}

/** The value of a successful Result; a failed one is thrown as its typed error. */
export function unwrap<T>(result: { ok: true; value: T } | { ok: false; error: DomainError }): T {
  if (result.ok) return result.value;
  throw toProblem(result.error);
}

/**
 * The value of a successful Result, for a field with no error union to put a failure in: a failed
 * one becomes an error that names its kind (extensions.code), where a thrown Problem would reach
 * the client masked as "Unexpected error".
 */
export function valueOrFieldError<T>(result: { ok: true; value: T } | { ok: false; error: DomainError }): T {
  if (result.ok) return result.value;
  throw new GraphQLError(result.error.message, { extensions: { code: result.error.kind } });
}
