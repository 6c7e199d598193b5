import { GraphQLError, Kind, visit, type DocumentNode, type ExecutionArgs } from 'graphql';
import type { Plugin } from 'graphql-yoga';

// Checks on what a request carries, before anything recurses over it or stores it: variables
// nested deeper than the limit (a 40,000-deep filter value overflowed the stack) and NUL
// characters (PostgreSQL refuses them in text and JSON, which surfaced as an unexpected error).
// Iterative on purpose: the point is to refuse before any recursion.

function variablesProblem(variables: unknown, maxDepth: number): string | null {
  const stack: [unknown, number][] = [[variables, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\0')) return 'Input must not contain NUL characters (\\u0000).';
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth > maxDepth) return `Input is nested more than ${maxDepth} levels deep.`;
    for (const [key, inner] of Object.entries(value)) {
      if (key.includes('\0')) return 'Input must not contain NUL characters (\\u0000).';
      stack.push([inner, depth + 1]);
    }
  }
  return null;
}

function documentProblem(document: DocumentNode): string | null {
  let problem: string | null = null;
  visit(document, {
    [Kind.STRING]: (node) => {
      if (node.value.includes('\0')) problem = 'Input must not contain NUL characters (\\u0000).';
    },
  });
  return problem;
}

const refusal = (message: string) => ({
  errors: [new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } })],
});

/** Refuses a request whose variables or literals break the rules above, over HTTP and graphql-ws alike. */
export function inputChecks(maxDepth: number): Plugin {
  // Yoga's parser cache hands out one document object per query text: its literals are walked
  // once, not on every request that sends it again.
  const checked = new WeakMap<DocumentNode, string | null>();
  const literalsProblem = (document: DocumentNode) => {
    let problem = checked.get(document);
    if (problem === undefined) checked.set(document, (problem = documentProblem(document)));
    return problem;
  };
  const problemOf = (args: ExecutionArgs) =>
    // The variables count from their object: { filter: { attributes: ... } } is depth 2 at attributes.
    variablesProblem(args.variableValues ?? {}, maxDepth) ?? literalsProblem(args.document);
  return {
    onExecute: ({ args, setResultAndStopExecution }) => {
      const problem = problemOf(args);
      if (problem) setResultAndStopExecution(refusal(problem));
    },
    onSubscribe: ({ args, setResultAndStopExecution }) => {
      const problem = problemOf(args);
      if (problem) setResultAndStopExecution(refusal(problem));
    },
  };
}
