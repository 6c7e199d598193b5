import { getOperationAST, type DocumentNode, type ExecutionResult, type GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../schema/context.js';

export interface OperationLine {
  principal: string | undefined;
  operation: string;
  type: string;
  durationMs: number;
  /** invalid: refused before it ran (syntax, validation, limits); error: it ran and failed. */
  outcome: 'ok' | 'error' | 'invalid';
  errorCodes?: string[];
}

function describe(document: DocumentNode, operationName: string | null | undefined) {
  const operation = getOperationAST(document, operationName);
  return { operation: operation?.name?.value ?? operationName ?? '(anonymous)', type: operation?.operation ?? 'query' };
}

function outcome(errors: readonly GraphQLError[] | undefined): Pick<OperationLine, 'outcome' | 'errorCodes'> {
  if (!errors?.length) return { outcome: 'ok' };
  const codes = errors.map((error) => String(error.extensions?.['code'] ?? 'INTERNAL'));
  return { outcome: 'error', errorCodes: [...new Set(codes)] };
}

const elapsedMs = (startedAt: number) => Math.round((performance.now() - startedAt) * 10) / 10;

type Done = (errors: readonly GraphQLError[] | undefined) => void;

/** Calls `done` once a result is complete: at once, or after the last part of a stream. */
function whenComplete(result: unknown, done: Done) {
  if (!isAsyncIterable(result)) return done((result as ExecutionResult).errors);
  const errors: GraphQLError[] = [];
  return {
    onNext: ({ result: part }: { result: unknown }) => void errors.push(...((part as ExecutionResult).errors ?? [])),
    onEnd: () => done(errors),
  };
}

/**
 * One log line per GraphQL operation, over HTTP and WebSocket alike: who, which operation, how
 * long, and whether it failed. Only names and codes: never variables, results or error messages,
 * which may carry tokens, credentials or a resource's connection details. A subscription's line is
 * written when it ends, with how long it was open.
 */
export function operationLogPlugin(logger: Logger): Plugin<GraphQLContext> {
  const write = (line: OperationLine) =>
    logger.line(line.outcome === 'ok' ? 'info' : 'warn', 'graphql operation', { ...line });
  const start = (document: DocumentNode, operationName: string | null | undefined, context: GraphQLContext): Done => {
    const startedAt = performance.now();
    const base = { principal: context.actor?.name, ...describe(document, operationName) };
    return (errors: readonly GraphQLError[] | undefined) =>
      write({ ...base, durationMs: elapsedMs(startedAt), ...outcome(errors) });
  };
  return {
    onValidate({ params }) {
      const startedAt = performance.now();
      return ({ valid, result }) => {
        if (valid) return;
        write({
          // Authentication comes after validation: who sent a refused operation is not known yet.
          principal: undefined,
          ...describe(params.documentAST, undefined),
          durationMs: elapsedMs(startedAt),
          outcome: 'invalid',
          errorCodes: [
            ...new Set(result.map((error) => String(error.extensions?.['code'] ?? 'GRAPHQL_VALIDATION_FAILED'))),
          ],
        });
      };
    },
    onExecute({ args }) {
      const done = start(args.document, args.operationName, args.contextValue);
      return { onExecuteDone: ({ result }) => whenComplete(result, done) };
    },
    onSubscribe({ args }) {
      const done = start(args.document, args.operationName, args.contextValue);
      return {
        onSubscribeError: ({ error }) => done([error as GraphQLError]),
        onSubscribeResult: ({ result }) => whenComplete(result, done),
      };
    },
  };
}
