import type { CommandKind } from '../generated/prisma/client.js';
import { scheduleLeaseUpdate, scheduleResourceUpdate } from './jobs.js';
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
  // Raw: the client's create costs a read-back and noticeably more CPU.
  const leaseId = 'leaseId' in target ? target.leaseId : null;
  const resourceId = 'resourceId' in target ? target.resourceId : null;
  await ctx.tx.$executeRaw`
    INSERT INTO "Command" (kind, "targetLeaseId", "targetResourceId", "authorId", "createdAt")
    VALUES (${kind}::"CommandKind", ${leaseId}::int, ${resourceId}::int, ${authorId}::int, ${ctx.now}::timestamp)`;
  if (leaseId !== null) scheduleLeaseUpdate(ctx, leaseId);
  if (resourceId !== null) scheduleResourceUpdate(ctx, resourceId);
}
