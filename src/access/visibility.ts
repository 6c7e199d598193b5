import DataLoader from 'dataloader';
import type { Database } from '../db/database.js';
import { isAdmin, type Actor } from './actor.js';
import { visibleWhere, type GuardedType } from './policy.js';

type RowId = number | bigint;

/**
 * "May this actor see this row?" for rows already read, by whatever path: one batched query per
 * type per tick (DataLoader, rather than a batching of our own), answered by visibleWhere, so it
 * cannot disagree with the filters lists use. Admins need no query at all.
 */
export interface Visibility {
  /** True for admins: everything is visible, and callers may skip asking. */
  readonly all: boolean;
  visible(type: GuardedType, id: RowId): Promise<boolean>;
  /**
   * The answer `visible` already gave for this row in this request, if any: lets the schema guard
   * answer the tenth field of a row without a promise, which at every scalar field adds up.
   */
  known(type: GuardedType, id: RowId): boolean | undefined;
  /** Forget the answers: a subscription asks again on every event, as things change. */
  reset(): void;
}

const delegateOf = (db: Database, type: GuardedType) =>
  ({
    Lease: db.prisma.lease,
    Resource: db.prisma.resource,
    Blueprint: db.prisma.blueprint,
    Log: db.prisma.log,
    Authorization: db.prisma.authorization,
    ApiToken: db.prisma.apiToken,
    Credential: db.prisma.credential,
    Principal: db.prisma.principal,
  })[type] as unknown as {
    findMany(args: { where: object; select: { id: true } }): Promise<{ id: RowId }[]>;
  };

const everything: Visibility = {
  all: true,
  visible: () => Promise.resolve(true),
  known: () => true,
  reset: () => {},
};

export function createVisibility(db: Database, actor: Actor): Visibility {
  if (isAdmin(actor)) return everything;
  let loaders = new Map<GuardedType, DataLoader<RowId, boolean, string>>();
  let answers = new Map<string, boolean>();
  const loader = (type: GuardedType) => {
    let found = loaders.get(type);
    if (!found) {
      // Bound to this generation's answers: a batch still in flight across a reset must not
      // write its (older) answers into the next generation's.
      const into = answers;
      found = new DataLoader<RowId, boolean, string>(
        async (ids) => {
          const rows = await delegateOf(db, type).findMany({
            where: { AND: [{ id: { in: [...ids] } }, visibleWhere(actor, type)] },
            select: { id: true },
          });
          const seen = new Set(rows.map((row) => String(row.id)));
          return ids.map((id) => {
            const visible = seen.has(String(id));
            into.set(`${type}:${String(id)}`, visible);
            return visible;
          });
        },
        { cacheKeyFn: String },
      );
      loaders.set(type, found);
    }
    return found;
  };
  return {
    all: false,
    visible: (type, id) => loader(type).load(id),
    known: (type, id) => answers.get(`${type}:${String(id)}`),
    reset: () => {
      loaders = new Map();
      answers = new Map();
    },
  };
}
