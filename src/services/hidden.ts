import { notFound, type DomainError, type NotFoundError } from '../domain-errors.js';
import { visibleWhere } from '../access/policy.js';
import type { Actor } from '../access/actor.js';
import type { Prisma } from '../generated/prisma/client.js';

type Target = { type: 'Blueprint' | 'Resource' | 'Authorization'; entity: NotFoundError['entity']; id: number };

/**
 * What a caller may not see does not exist for it (docs/access.md): a refusal to act on an object
 * it cannot see becomes "does not exist", as for an id that names nothing, since "you may not"
 * would confirm that the object is there. Read only when refused: the allowed path costs nothing.
 */
export async function refusalAsSeen(
  /** The client or the transaction the refusal was judged in (PGlite has one connection). */
  db: Prisma.TransactionClient,
  actor: Actor,
  refused: DomainError | null,
  target: Target,
): Promise<DomainError | null> {
  if (refused?.kind !== 'NotAuthorizedError') return refused;
  const seen = await countVisible(db, actor, target);
  return seen > 0 ? refused : notFound(target.entity, target.id);
}

function countVisible(db: Prisma.TransactionClient, actor: Actor, { type, id }: Target): Promise<number> {
  switch (type) {
    case 'Blueprint':
      return db.blueprint.count({ where: { AND: [{ id }, visibleWhere(actor, type)] } });
    case 'Resource':
      return db.resource.count({ where: { AND: [{ id }, visibleWhere(actor, type)] } });
    case 'Authorization':
      return db.authorization.count({ where: { AND: [{ id }, visibleWhere(actor, type)] } });
  }
}
