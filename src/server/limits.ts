import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { NoSchemaIntrospectionCustomRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';

export interface QueryLimits {
  maxDepth: number;
  maxCost: number;
  introspection: boolean;
}

/** Depth, cost, alias, directive and token limits (graphql-armor), and introspection on or off. */
export function limitPlugins(limits: QueryLimits): Plugin[] {
  const plugins: Plugin[] = [
    EnvelopArmorPlugin({
      maxDepth: { n: limits.maxDepth, ignoreIntrospection: true, exposeLimits: true },
      costLimit: { maxCost: limits.maxCost, exposeLimits: true },
      maxAliases: { n: 30, exposeLimits: true },
      maxDirectives: { n: 30, exposeLimits: true },
      maxTokens: { n: 5_000, exposeLimits: true },
      // Its suggestions would reveal field names when introspection is off.
      blockFieldSuggestion: { enabled: !limits.introspection },
    }) as Plugin,
  ];
  if (!limits.introspection) {
    plugins.push({
      onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule),
    });
  }
  return plugins;
}
