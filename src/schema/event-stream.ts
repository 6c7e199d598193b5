import { contextCacheSymbol } from '@pothos/core';
import { GraphQLError } from 'graphql';
import { visibleWhere } from '../access/policy.js';
import type { DomainEvent } from '../events/domain-events.js';
import type { Log } from '../generated/prisma/client.js';
import type { GraphQLContext } from './context.js';
import { valueOrFieldError } from './errors.js';
import { readThroughOutage } from '../db/connection-loss.js';
import { parseCursor } from './log-cursor.js';
import { sharedRead } from './shared-reads.js';

type Stream = { kind: 'lease'; id: number } | { kind: 'resource'; id: number };

/**
 * One object's log as an ordered stream with cursors: with `after` it replays what the log holds
 * past that cursor, then goes on live; it ends once the object is DESTROYED. Live events only say
 * "something new": the rows come from the database, so the same cursors hold across processes and
 * a reconnecting client gets no gap and no duplicate.
 */
export async function* objectEventStream(
  ctx: GraphQLContext,
  stream: Stream,
  after: string | null | undefined,
): AsyncGenerator<{ log: Log }> {
  const visible =
    stream.kind === 'lease'
      ? await ctx.services.leases.get(ctx.actor, stream.id)
      : await ctx.services.resources.get(ctx.actor, stream.id);
  valueOrFieldError<unknown>(visible);
  const parsed = parseCursor(after);
  if (after !== null && after !== undefined && parsed === null) {
    throw new GraphQLError('after must be a cursor from an earlier event', { extensions: { code: 'ValidationError' } });
  }
  const where = stream.kind === 'lease' ? { leaseId: stream.id } : { resourceId: stream.id };
  // Subscribe before reading, so that an event committed in between is not lost.
  // A resource's topic also carries the events of leases whose entries are in its log.
  const live: AsyncIterable<DomainEvent> =
    stream.kind === 'lease'
      ? ctx.pubsub.subscribe('lease:event', stream.id)
      : ctx.pubsub.subscribe('resource:event', stream.id);
  let last = parsed;
  // Through the policy on every read: a shared resource's log holds other principals' entries.
  const policy = visibleWhere(ctx.actor, 'Log');
  // A read is shared only by subscribers whose policy filter is the same: an admin's read of a
  // resource's log holds entries another subscriber of it may not see.
  const readKey = `${stream.kind}:${stream.id}:${JSON.stringify(policy)}`;
  /** The log past `last`; woken by an event, the read is shared with the event's other subscribers. */
  async function* newer(event?: object) {
    const after = last;
    const read = () =>
      readThroughOutage(() =>
        ctx.db.prisma.log.findMany({
          where: { AND: [where, after === null ? {} : { id: { gt: after } }, policy] },
          orderBy: { id: 'asc' },
        }),
      );
    const logs = event ? await sharedRead(event, `${readKey}:${after}`, read) : await read();
    for (const log of logs) {
      last = log.id;
      yield { log };
    }
  }
  // A pub/sub iterator listens only once next() is first called: call it now, before the replay.
  const iterator = live[Symbol.asyncIterator]();
  let nextEvent = iterator.next();
  try {
    if (last !== null) yield* newer();
    else
      last = (await readThroughOutage(() => ctx.db.prisma.log.findFirst({ where, orderBy: { id: 'desc' } })))?.id ?? 0n;
    if (await isDestroyed(ctx, stream)) {
      // Destroyed since the replay read: the destroying transaction's logs committed with it and
      // may be newer than what the replay saw.
      yield* newer();
      return;
    }
    for (;;) {
      const event = await nextEvent;
      if (event.done) return;
      nextEvent = iterator.next();
      yield* newer(event.value);
      // Only the object's own DESTROYED ends it: a lease destroyed on a resource does not.
      if (event.value.kind === stream.kind && event.value.status === 'DESTROYED') return;
    }
  } finally {
    await iterator.return?.();
  }
}

async function isDestroyed(ctx: GraphQLContext, stream: Stream): Promise<boolean> {
  const row = await readThroughOutage(() =>
    stream.kind === 'lease'
      ? ctx.db.prisma.lease.findUnique({ where: { id: stream.id }, select: { status: true } })
      : ctx.db.prisma.resource.findUnique({ where: { id: stream.id }, select: { status: true } }),
  );
  return row?.status === 'DESTROYED';
}

/**
 * Pothos' loaders cache rows per context, and a subscription keeps one context for its whole
 * life: without a fresh cache per event, every event would show the object as it was at the
 * first one.
 */
export function freshLoaderCache(ctx: GraphQLContext): void {
  (ctx as unknown as Record<symbol, unknown>)[contextCacheSymbol] = {};
  ctx.access.reset();
}

// The transitions each log type records; other entries leave the status as it was.
const leaseStatusAfter: Record<string, string> = {
  'lease-requested': 'PENDING',
  'lease-acquired': 'ACQUIRED',
  'lease-activated': 'ACTIVE',
  'lease-reacquiring': 'PENDING',
  'lease-released': 'RELEASED',
  'lease-broken': 'BROKEN',
  'lease-destroyed': 'DESTROYED',
};
const resourceStatusAfter: Record<string, string> = {
  'resource-activated': 'ACTIVE',
  'resource-released': 'RELEASED',
  'resource-broken': 'BROKEN',
  'resource-destroyed': 'DESTROYED',
};

/**
 * The object's status right after a log entry: the latest transition at or before it. Replayed
 * events thus show the status they had, not the object's status now.
 */
export async function statusAfter(ctx: GraphQLContext, kind: 'lease' | 'resource', log: Log): Promise<string> {
  if (kind === 'lease') {
    const known = leaseStatusAfter[log.type];
    if (known) return known;
    const last = await readThroughOutage(() =>
      ctx.db.prisma.log.findFirst({
        where: { leaseId: log.leaseId, id: { lte: log.id }, type: { in: Object.keys(leaseStatusAfter) } },
        orderBy: { id: 'desc' },
        select: { type: true },
      }),
    );
    return (last && leaseStatusAfter[last.type]) ?? 'PENDING';
  }
  const last = await readThroughOutage(() =>
    ctx.db.prisma.log.findFirst({
      where: {
        resourceId: log.resourceId,
        id: { lte: log.id },
        type: { in: [...Object.keys(resourceStatusAfter), 'resource-allocated'] },
      },
      orderBy: { id: 'desc' },
      select: { type: true, data: true },
    }),
  );
  if (!last) return 'PENDING';
  if (last.type === 'resource-allocated') return String((last.data as { status?: string }).status ?? 'PENDING');
  return resourceStatusAfter[last.type] ?? 'PENDING';
}
