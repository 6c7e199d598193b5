import type { AuthenticatedActor } from '../auth/authenticate.js';
import type { Database } from '../db/database.js';

/** What every resolver can reach. Resolvers stay thin: reads go through Prisma, writes through services. */
export interface GraphQLContext {
  db: Database;
  /** Who is asking: every request that reaches a resolver has been authenticated. */
  actor: AuthenticatedActor;
}
