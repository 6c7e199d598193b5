import type { Visibility } from '../access/visibility.js';
import type { AuthenticatedActor } from '../auth/authenticate.js';
import type { Database } from '../db/database.js';
import type { DrydockPubSub } from '../events/pubsub.js';
import type { Services } from '../services/index.js';

/** What every resolver can reach. Resolvers stay thin: reads go through Prisma, writes through services. */
export interface GraphQLContext {
  db: Database;
  services: Services;
  pubsub: DrydockPubSub;
  /** Who is asking: every request that reaches a resolver has been authenticated. */
  actor: AuthenticatedActor;
  /** The access policy's answer to "may the actor see this row?" (see src/schema/access-guard.ts). */
  access: Visibility;
}
