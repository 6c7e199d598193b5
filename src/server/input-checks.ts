import { BREAK, GraphQLError, Kind, visit, type DocumentNode, type ExecutionArgs } from 'graphql';
import type { Plugin } from 'graphql-yoga';

// Checks on what a request carries, before anything recurses over it or stores it: values nested
// deeper than the limit (a 40,000-deep filter value overflowed the stack; a 200-deep literal was
// stored), NUL characters and lone UTF-16 surrogates (PostgreSQL refuses both in text and JSON,
// which surfaced as an unexpected error). Iterative on purpose: the point is to refuse before any
// recursion.
//
// Depth counts alike in variables and literals, so that a value gets the same answer either way:
// a variable's value, an argument's literal and a variable's default are at depth 1, what an
// object or list holds one deeper, and an object or list deeper than the limit is refused. A
// variable used inside a literal sits as deep as its place there.

const NUL = 'Input must not contain NUL characters (\\u0000).';
const SURROGATE = 'Input must not contain unpaired UTF-16 surrogates (\\uD800-\\uDFFF without their pair).';
const tooDeep = (maxDepth: number) => `Input is nested more than ${maxDepth} levels deep.`;

/** A lone surrogate: a high one not followed by a low one, or a low one not after a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function stringProblem(text: string): string | null {
  if (text.includes('\0')) return NUL;
  if (LONE_SURROGATE.test(text)) return SURROGATE;
  return null;
}

/** The first problem of `value` placed at `start` deep (a variable's value: 1). */
function valueProblem(value: unknown, start: number, maxDepth: number, checkStrings: boolean): string | null {
  const stack: [unknown, number][] = [[value, start]];
  while (stack.length > 0) {
    const [inner, depth] = stack.pop()!;
    if (typeof inner === 'string') {
      const problem = checkStrings ? stringProblem(inner) : null;
      if (problem) return problem;
      continue;
    }
    if (typeof inner !== 'object' || inner === null) continue;
    if (depth > maxDepth) return tooDeep(maxDepth);
    for (const [key, item] of Object.entries(inner)) {
      const problem = checkStrings ? stringProblem(key) : null;
      if (problem) return problem;
      stack.push([item, depth + 1]);
    }
  }
  return null;
}

/** What the literals of a document tell, for every request that sends it. */
interface LiteralFacts {
  problem: string | null;
  /** Variables used inside an object or list literal, with the deepest place each is used at. */
  nested: Map<string, number>;
  /** How deep a variable's default goes (1: an object or list of scalars), by variable. */
  defaultDepths: Map<string, number>;
}

function literalFacts(document: DocumentNode, maxDepth: number): LiteralFacts {
  const facts: LiteralFacts = { problem: null, nested: new Map(), defaultDepths: new Map() };
  // Object and list values enclosing the node visited: a literal's own object is at depth 1.
  let depth = 0;
  let defaultOf: string | null = null;
  const fail = (problem: string) => {
    facts.problem = problem;
    return BREAK;
  };
  const enterComposite = () => {
    depth += 1;
    if (depth > maxDepth) return fail(tooDeep(maxDepth));
    if (defaultOf !== null)
      facts.defaultDepths.set(defaultOf, Math.max(facts.defaultDepths.get(defaultOf) ?? 0, depth));
    return undefined;
  };
  const leaveComposite = () => {
    depth -= 1;
  };
  visit(document, {
    [Kind.STRING]: (node) => {
      const problem = stringProblem(node.value);
      return problem ? fail(problem) : undefined;
    },
    [Kind.OBJECT]: { enter: enterComposite, leave: leaveComposite },
    [Kind.LIST]: { enter: enterComposite, leave: leaveComposite },
    [Kind.VARIABLE_DEFINITION]: {
      enter: (node) => {
        defaultOf = node.variable.name.value;
      },
      leave: () => {
        defaultOf = null;
      },
    },
    [Kind.VARIABLE]: (node) => {
      // Its value takes the place of a value at depth + 1.
      if (depth === 0) return;
      const name = node.name.value;
      facts.nested.set(name, Math.max(facts.nested.get(name) ?? 0, depth + 1));
    },
  });
  return facts;
}

const refusal = (message: string) => ({
  errors: [new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } })],
});

/** Refuses a request whose variables or literals break the rules above, over HTTP and graphql-ws alike. */
export function inputChecks(maxDepth: number): Plugin {
  // Yoga's parser cache hands out one document object per query text: its literals are walked
  // once, not on every request that sends it again.
  const checked = new WeakMap<DocumentNode, LiteralFacts>();
  const factsOf = (document: DocumentNode) => {
    let facts = checked.get(document);
    if (facts === undefined) checked.set(document, (facts = literalFacts(document, maxDepth)));
    return facts;
  };
  const problemOf = (args: ExecutionArgs) => {
    const variables = args.variableValues ?? {};
    // The variables count from their object: { filter: { attributes: ... } } is depth 2 at attributes.
    const problem = valueProblem(variables, 0, maxDepth, true);
    if (problem) return problem;
    const facts = factsOf(args.document);
    if (facts.problem) return facts.problem;
    // A variable used inside a literal: its value (or else its default) as deep as it is used.
    for (const [name, at] of facts.nested) {
      const value = variables[name];
      if (value === undefined) {
        const own = facts.defaultDepths.get(name);
        if (own !== undefined && at + own - 1 > maxDepth) return tooDeep(maxDepth);
        continue;
      }
      const nested = valueProblem(value, at, maxDepth, false);
      if (nested) return nested;
    }
    return null;
  };
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
