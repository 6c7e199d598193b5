import { refusalAsSeen } from './hidden.js';
import type { Authorization } from '../generated/prisma/client.js';
import type { AllocatorDeps } from '../allocator/context.js';
import { inTransaction } from '../allocator/transaction.js';
import { notFound } from '../domain-errors.js';
import { writeLog } from '../allocator/logs.js';
import { fail, ok, type Result } from '../allocator/result.js';
import { schedulePass } from '../allocator/jobs.js';
import { may } from '../access/policy.js';
import type { Actor } from './actor.js';

export interface AuthorizationService {
  /** A principal asks to use a blueprint (REQUESTED). Itself, or an administrator on its behalf. */
  request(actor: Actor, input: { blueprintId: number; principalId: number }): Promise<Result<Authorization>>;
  /** The blueprint's editor decides. Revoking does not release existing leases. */
  set(
    actor: Actor,
    input: { authorizationId: number; state: 'AUTHORIZED' | 'DECLINED' },
  ): Promise<Result<Authorization>>;
}

export function authorizationService(deps: AllocatorDeps): AuthorizationService {
  const { db } = deps;
  return {
    async request(actor, input) {
      const refused = may(actor, { kind: 'authorization.request', principalId: input.principalId });
      if (refused) return fail(refused);
      const blueprint = await db.prisma.blueprint.findUnique({ where: { id: input.blueprintId } });
      if (!blueprint) return fail(notFound('blueprint', input.blueprintId));
      const principal = await db.prisma.principal.findUnique({ where: { id: input.principalId } });
      if (!principal) return fail(notFound('principal', input.principalId));
      const authorization = await inTransaction(deps, async (ctx) => {
        const row = await ctx.tx.authorization.upsert({
          where: { blueprintId_principalId: { blueprintId: input.blueprintId, principalId: input.principalId } },
          create: { blueprintId: input.blueprintId, principalId: input.principalId },
          update: { objectState: 'ACTIVE' },
        });
        await writeLog(ctx, {
          type: 'authorization-requested',
          data: { principalId: input.principalId, authorizationId: row.id },
          blueprintId: input.blueprintId,
        });
        return row;
      });
      return ok(authorization);
    },

    async set(actor, input) {
      const existing = await db.prisma.authorization.findUnique({
        where: { id: input.authorizationId },
        include: { blueprint: true },
      });
      if (!existing) return fail(notFound('authorization', input.authorizationId));
      const refused = await refusalAsSeen(
        db.prisma,
        actor,
        may(actor, { kind: 'authorization.decide', blueprint: existing.blueprint }),
        { type: 'Authorization', entity: 'authorization', id: input.authorizationId },
      );
      if (refused) return fail(refused);
      const authorization = await inTransaction(deps, async (ctx) => {
        const row = await ctx.tx.authorization.update({
          where: { id: input.authorizationId },
          data: { blueprintState: input.state },
        });
        await writeLog(ctx, {
          type: 'authorization-changed',
          data: { principalId: row.principalId, authorizationId: row.id, state: input.state },
          blueprintId: row.blueprintId,
        });
        if (input.state === 'AUTHORIZED') schedulePass(ctx, existing.blueprint.resourceType);
        return row;
      });
      return ok(authorization);
    },
  };
}
