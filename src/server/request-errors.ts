import { PothosValidationError } from '@pothos/core';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';

/** The code of an error in what the client sent (the GraphQL convention, also used by our own checks). */
const BAD_USER_INPUT = 'BAD_USER_INPUT';

/** An argument Pothos refuses as a resolver starts (a negative `first`, `before` with `first`, …). */
function fromPothosArguments(error: GraphQLError): boolean {
  for (let cause: unknown = error; cause instanceof Error; cause = (cause as GraphQLError).originalError) {
    if (cause instanceof PothosValidationError) return true;
    if (!(cause instanceof GraphQLError)) return false;
  }
  return false;
}

const withCode = (error: GraphQLError, code: string) =>
  new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });

/** Puts a code on each of the client's mistakes in `result` that came without one. */
function codeErrors({ result, setResult }: { result: ExecutionResult; setResult: (result: ExecutionResult) => void }) {
  const errors = result.errors;
  if (!errors?.some((error) => error.extensions?.['code'] === undefined)) return;
  // No data: the executor refused the request before anything ran, which only the request itself
  // causes (variables that do not fit their types or are missing, an operation name that names
  // none). Every refusal of ours already carries its code.
  const refused = !('data' in result);
  let changed = false;
  const next = errors.map((error) => {
    if (error.extensions?.['code'] !== undefined || !(refused || fromPothosArguments(error))) return error;
    changed = true;
    return withCode(error, BAD_USER_INPUT);
  });
  if (changed) setResult({ ...result, errors: next });
}

/**
 * Codes the client's mistakes that graphql-js and Pothos report without one, over HTTP and
 * graphql-ws alike: variables that do not fit their types or are missing, and arguments Pothos
 * refuses. Uncoded, a client could not tell them from the server failing, and the operation log
 * counted them as INTERNAL; placed before the log, which reads the codes of the same results.
 */
export function requestErrorCodes(): Plugin {
  return {
    onExecute: () => ({ onExecuteDone: (payload) => handleStreamOrSingleExecutionResult(payload, codeErrors) }),
    onSubscribe: () => ({
      onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, codeErrors),
    }),
  };
}
