import type { Command, CommandKind } from '../generated/prisma/client.js';
import { scheduleLeaseUpdate, scheduleResourceUpdate } from '../queue/jobs.js';
import type { TxContext } from './context.js';

export type CommandTarget = { leaseId: number } | { resourceId: number };

/**
 * The single writer's mailbox: whoever may not write an object leaves it a command and schedules
 * its update, which consumes the command under the object's lock.
 */
export async function sendCommand(
  ctx: TxContext,
  kind: CommandKind,
  target: CommandTarget,
  authorId: number | null,
): Promise<void> {
  await ctx.tx.command.create({
    data: {
      kind,
      authorId,
      createdAt: ctx.now,
      ...('leaseId' in target ? { targetLeaseId: target.leaseId } : { targetResourceId: target.resourceId }),
    },
  });
  if ('leaseId' in target) scheduleLeaseUpdate(ctx, target.leaseId);
  else scheduleResourceUpdate(ctx, target.resourceId);
}

/** Takes the target's unconsumed commands, oldest first; the caller holds the target's lock. */
export async function consumeCommands(ctx: TxContext, target: CommandTarget): Promise<Command[]> {
  // One statement, since nearly every update finds no command at all.
  const leaseId = 'leaseId' in target ? target.leaseId : null;
  const resourceId = 'resourceId' in target ? target.resourceId : null;
  const commands = await ctx.tx.$queryRaw<Command[]>`
    UPDATE "Command" SET consumed = true, "consumedAt" = ${ctx.now}::timestamp
    WHERE NOT consumed AND ("targetLeaseId" = ${leaseId}::int OR "targetResourceId" = ${resourceId}::int)
    RETURNING *`;
  return commands.sort((a, b) => (a.id < b.id ? -1 : 1));
}
