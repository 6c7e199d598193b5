import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { GraphQLError, NoSchemaIntrospectionCustomRule, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { inputChecks } from './input-checks.js';
import { costOptions, queryCostLimit } from './query-cost.js';

export interface QueryLimits {
  maxDepth: number;
  maxCost: number;
  introspection: boolean;
  /** How deeply variables may nest (JSON values included). */
  maxInputDepth: number;
  maxTokens: number;
}

/**
 * How graphql-armor's validation limits refuse: reported as the validation error they are, with a
 * code of their own. Left to armor, the rule throws an untyped "Syntax Error: ..." out of
 * validation, which clients got without a code and the operation log counted as INTERNAL.
 */
function refusedAs(code: string) {
  return {
    propagateOnRejection: false,
    onReject: [
      (context: ValidationContext | null, error: GraphQLError) =>
        context?.reportError(
          new GraphQLError(error.message.replace(/^Syntax Error: /, ''), {
            extensions: { code, http: { status: 400 } },
          }),
        ),
    ],
  };
}

/**
 * Depth, alias, directive and token limits (graphql-armor), the cost limit (ours, where the
 * variables are known: see query-cost.ts), and introspection on or off.
 */
export function limitPlugins(limits: QueryLimits): Plugin[] {
  const plugins: Plugin[] = [
    EnvelopArmorPlugin({
      maxDepth: { n: limits.maxDepth, ignoreIntrospection: true, exposeLimits: true, ...refusedAs('QUERY_TOO_DEEP') },
      // Its estimate is a validation rule, blind to variables: `first: $n` weighed as 1.
      costLimit: { enabled: false },
      maxAliases: { n: 30, exposeLimits: true, ...refusedAs('TOO_MANY_ALIASES') },
      maxDirectives: { n: 30, exposeLimits: true, ...refusedAs('TOO_MANY_DIRECTIVES') },
      maxTokens: { n: limits.maxTokens, exposeLimits: true },
      // Its suggestions would reveal field names when introspection is off.
      blockFieldSuggestion: { enabled: !limits.introspection },
    }) as Plugin,
    inputChecks(limits.maxInputDepth),
    queryCostLimit(costOptions(limits.maxCost)),
  ];
  // A deeply nested literal overflows the parser's stack before any limit is checked: that is the
  // client's mistake (400), not a server error.
  plugins.push({
    onParse: ({ parseFn, setParseFn }) => {
      setParseFn((source, options) => {
        try {
          return parseFn(source, options);
        } catch (error) {
          if (error instanceof RangeError) {
            throw new GraphQLError('The query is nested too deeply.', {
              extensions: { code: 'QUERY_TOO_DEEP', http: { status: 400 } },
            });
          }
          throw error;
        }
      });
    },
  });
  if (!limits.introspection) {
    plugins.push({
      onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule),
    });
  }
  return plugins;
}
