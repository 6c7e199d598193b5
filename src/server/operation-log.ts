import { getOperationAST, GraphQLError, type DocumentNode, type ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Logger } from '../logger.js';
import type { GraphQLContext } from '../schema/context.js';

export interface OperationLine {
  principal: string | undefined;
  operation: string;
  type: string;
  durationMs: number;
  /**
   * invalid: refused before it ran (syntax, validation, limits, authentication, origin, rate);
   * error: it ran and failed.
   */
  outcome: 'ok' | 'error' | 'invalid';
  errorCodes?: string[];
}

/** What names and types an operation whose text did not parse, in the log and in metrics. */
export const UNPARSED = '(unparsed)';
/** What names an operation without a name. */
export const ANONYMOUS = '(anonymous)';

/** How the log and the metrics name an operation and its type. */
export function describeOperation(document: DocumentNode, operationName: string | null | undefined) {
  const operation = getOperationAST(document, operationName);
  return { operation: operation?.name?.value ?? operationName ?? ANONYMOUS, type: operation?.operation ?? 'query' };
}

function outcome(errors: readonly GraphQLError[] | undefined): Pick<OperationLine, 'outcome' | 'errorCodes'> {
  if (!errors?.length) return { outcome: 'ok' };
  const codes = errors.map((error) => String(error.extensions?.['code'] ?? 'INTERNAL'));
  return { outcome: 'error', errorCodes: [...new Set(codes)] };
}

/** The distinct codes of errors that refused an operation, `fallback` for those without one. */
function codesOf(errors: readonly unknown[], fallback: string): string[] {
  const codes = errors.map((error) => {
    const code = error instanceof GraphQLError ? error.extensions?.['code'] : undefined;
    return typeof code === 'string' ? code : fallback;
  });
  return [...new Set(codes)];
}

const elapsedMs = (startedAt: number) => Math.round((performance.now() - startedAt) * 10) / 10;

type Done = (errors: readonly GraphQLError[] | undefined, refused?: boolean) => void;

/**
 * A result without data: the executor refused the request before anything ran, for what it asked
 * (variables that do not fit their types, an operation name that names none).
 */
const refusedByExecutor = (result: unknown) => !isAsyncIterable(result) && !('data' in (result as object));

/** `done` for an operation a plugin or the executor stopped before it ran. */
const refusedAsIt =
  (done: Done): Done =>
  (errors) =>
    done(errors, true);

/**
 * Streaming responses and WebSockets the server ended early, and the code of the last error it
 * ended each with.
 */
const endedByServer = new WeakMap<object, string>();

/**
 * Records that the server is ending `res` (a streaming response, or a WebSocket) early with a last
 * error of `code` (shutdown, a revoked or expired token). That error is written to the response,
 * or is the socket's close, not produced by the execution, which sees only its stream close, as
 * when a client leaves: its entry takes the code from here.
 */
export function recordServerEnd(res: object, code: string): void {
  endedByServer.set(res, code);
}

/** The error a stream's response or socket was ended with by the server, if it was. */
function serverEnd(context: object): GraphQLError | undefined {
  const { res, socket } = context as { res?: object; socket?: object };
  const ender = res ?? socket;
  const code = ender && endedByServer.get(ender);
  return code ? new GraphQLError('The server ended the stream.', { extensions: { code } }) : undefined;
}

/** Calls `done` once a result is complete: at once, or after the last part of a stream. */
function whenComplete(result: unknown, done: Done, context: object) {
  if (!isAsyncIterable(result)) return done((result as ExecutionResult).errors);
  const errors: GraphQLError[] = [];
  return {
    onNext: ({ result: part }: { result: unknown }) => void errors.push(...((part as ExecutionResult).errors ?? [])),
    onEnd: () => {
      const ended = serverEnd(context);
      done(ended ? [...errors, ended] : errors);
    },
  };
}

/**
 * Who a refusal was for, when it comes after authentication (a rate limit): the context factory
 * throws before the operation's context holds its actor, so the error carries it.
 */
const refusedPrincipal = Symbol('refusedPrincipal');

/** Marks `error`, thrown by the context factory, as refusing `principal`'s operation. */
export function refusedFor<E extends object>(principal: string, error: E): E {
  return Object.assign(error, { [refusedPrincipal]: principal });
}

const principalRefused = (error: unknown): string | undefined =>
  error && typeof error === 'object' ? (error as { [refusedPrincipal]?: string })[refusedPrincipal] : undefined;

/**
 * Writes an entry for each graphql-ws connection `gate` refuses at `connection_init`: a bad token
 * or another web origin closes the socket before any operation, and failed logins must show.
 */
export function logRefusedConnections<Args extends unknown[], Accepted extends object>(
  gate: (...args: Args) => Promise<Accepted | { refused: string }>,
  logger: Logger,
): (...args: Args) => Promise<Accepted | { refused: string }> {
  return async (...args) => {
    const startedAt = performance.now();
    const result = await gate(...args);
    if ('refused' in result) {
      logger.line('warn', 'graphql-ws connection refused', {
        durationMs: elapsedMs(startedAt),
        outcome: 'invalid',
        errorCodes: [result.refused],
      });
    }
    return result;
  };
}

/** One operation, from its parse to its entry: keyed by envelop's context, one per operation on either transport. */
interface Pending {
  startedAt: number;
  document: DocumentNode | undefined;
  /** Its entry is written, or will be by the execute or subscribe hooks: nothing else writes one. */
  logged: boolean;
}

type OperationContext = Partial<GraphQLContext> & { params?: { operationName?: string | null } };

/**
 * One log line per GraphQL operation, over HTTP and WebSocket alike: who, which operation, how
 * long, and whether it failed. Only names and codes: never variables, results or error messages,
 * which may carry tokens, credentials or a resource's connection details. A subscription's line is
 * written when it ends, with how long it was open; one the server ended (shutdown, its token
 * revoked or expired) is an error with the code it was ended with.
 *
 * An operation refused before it runs writes its line too, once, as `invalid` with the refusal's
 * codes: a syntax error (seen around the whole parse phase, because Yoga answers a repeated one
 * from its cache before any parse hook after it runs), a validation error, and a refusal of the
 * context factory (an unknown or revoked token, another web origin, the rate limit), and variables
 * the executor refuses. A refusal before authentication has no principal.
 */
export function operationLogPlugin(logger: Logger): Plugin<GraphQLContext> {
  const pending = new WeakMap<object, Pending>();
  const pendingOf = (context: object): Pending => {
    let found = pending.get(context);
    if (!found) {
      found = { startedAt: performance.now(), document: undefined, logged: false };
      pending.set(context, found);
    }
    return found;
  };
  const write = (line: OperationLine) =>
    logger.line(line.outcome === 'ok' ? 'info' : 'warn', 'graphql operation', { ...line });
  /** The line of an operation that never ran, unless it already has one. */
  const refused = (
    context: object,
    codes: string[],
    principal = (context as OperationContext).actor?.name,
    result: 'invalid' | 'error' = 'invalid',
  ) => {
    const operation = pendingOf(context);
    if (operation.logged) return;
    operation.logged = true;
    const operationName = (context as OperationContext).params?.operationName;
    write({
      principal,
      ...(operation.document
        ? describeOperation(operation.document, operationName)
        : { operation: UNPARSED, type: UNPARSED }),
      durationMs: elapsedMs(operation.startedAt),
      outcome: result,
      errorCodes: codes,
    });
  };
  const start = (document: DocumentNode, operationName: string | null | undefined, context: GraphQLContext): Done => {
    pendingOf(context).logged = true;
    const startedAt = performance.now();
    const base = { principal: context.actor?.name, ...describeOperation(document, operationName) };
    return (errors, refused) =>
      write({
        ...base,
        durationMs: elapsedMs(startedAt),
        ...(refused ? { outcome: 'invalid', errorCodes: codesOf(errors ?? [], 'INTERNAL') } : outcome(errors)),
      });
  };
  return {
    onPluginInit({ registerContextErrorHandler }) {
      registerContextErrorHandler(({ context, error }) => {
        // A refusal is a GraphQL error with a code; anything else is the server failing.
        const code = error instanceof GraphQLError ? error.extensions?.['code'] : undefined;
        const principal = principalRefused(error);
        if (typeof code === 'string') refused(context, [code], principal);
        else refused(context, ['INTERNAL'], principal, 'error');
      });
    },
    instrumentation: {
      parse({ context }, parse) {
        pendingOf(context);
        try {
          parse();
        } catch (error) {
          refused(context, codesOf([error], 'GRAPHQL_PARSE_FAILED'), undefined);
          throw error;
        }
      },
    },
    onParse({ context }) {
      return ({ result }) => {
        if (result && !(result instanceof Error)) pendingOf(context).document = result;
      };
    },
    onValidate({ context, params }) {
      return ({ valid, result }) => {
        if (valid) return;
        // Over HTTP validation comes before authentication, so the principal is not known yet;
        // over graphql-ws after it.
        pendingOf(context).document ??= params.documentAST;
        refused(context, codesOf(result, 'GRAPHQL_VALIDATION_FAILED'));
      };
    },
    // This plugin comes before the limits: a limit that refuses an operation as it starts (its
    // cost, its input's depth) stops it before its execute function is called, and the entry
    // says invalid, on graphql-ws too, where Yoga's result hook below does not run.
    onExecute({ args, executeFn, setExecuteFn }) {
      const done = start(args.document, args.operationName, args.contextValue);
      let ran = false;
      setExecuteFn((runArgs) => {
        ran = true;
        return executeFn(runArgs);
      });
      return {
        onExecuteDone: ({ result }) =>
          whenComplete(result, ran && !refusedByExecutor(result) ? done : refusedAsIt(done), args.contextValue),
      };
    },
    onSubscribe({ args, subscribeFn, setSubscribeFn }) {
      const done = start(args.document, args.operationName, args.contextValue);
      let ran = false;
      setSubscribeFn((runArgs) => {
        ran = true;
        return subscribeFn(runArgs);
      });
      return {
        onSubscribeError: ({ error }) => done([error as GraphQLError]),
        onSubscribeResult: ({ result }) =>
          whenComplete(result, ran && !refusedByExecutor(result) ? done : refusedAsIt(done), args.contextValue),
      };
    },
    // Over HTTP, whatever else ended an operation before it ran (a limit checked as it starts)
    // still writes its line, with the codes of the answer.
    onExecutionResult({ result, context }) {
      const operation = pending.get(context);
      if (!operation || operation.logged || isAsyncIterable(result)) return;
      const errors = Array.isArray(result) ? [] : ((result as ExecutionResult | undefined)?.errors ?? []);
      refused(context, codesOf(errors, 'INTERNAL'));
    },
  };
}
