import { lexicographicSortSchema, type GraphQLSchema } from 'graphql';
import { guardSchema } from './access-guard.js';
import { builder } from './builder.js';
import './principal.js';
import './blueprint.js';
import './authorization.js';
import './resource.js';
import './lease.js';
import './log.js';
import './logs-query.js';
import './token.js';
import './lease-candidates.js';
import './credential.js';
import './lease-command.js';
import './scheduling.js';

let built: GraphQLSchema | undefined;

/** The executable schema (built once: a Pothos builder cannot be built twice). */
export function buildSchema(): GraphQLSchema {
  built ??= guardSchema(builder.toSchema());
  return built;
}

/** The schema as committed in schema.graphql: sorted, so that a diff shows only real API changes. */
export function printableSchema(): GraphQLSchema {
  return lexicographicSortSchema(buildSchema());
}
