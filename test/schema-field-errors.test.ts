// A field with no error union (Lease.interfaces, credentials, the log streams) answers a failed
// Result with an error that names its kind: a thrown Problem class would reach the client masked
// as "Unexpected error", which says nothing about what went wrong.
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { valueOrFieldError } from '../src/schema/errors.js';

describe('valueOrFieldError', () => {
  it('returns the value of a successful Result', () => {
    expect(valueOrFieldError({ ok: true, value: { ssh: {} } })).toEqual({ ssh: {} });
  });

  it('turns a NotFound into a GraphQLError with its kind as the code, which masking lets through', () => {
    let thrown: unknown;
    try {
      valueOrFieldError({
        ok: false,
        error: { kind: 'NotFoundError', entity: 'lease', id: 7, message: 'lease 7 not found' },
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GraphQLError);
    expect(thrown).toMatchObject({ message: 'lease 7 not found', extensions: { code: 'NotFoundError' } });
  });
});
