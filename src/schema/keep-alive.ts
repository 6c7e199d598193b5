import type { GraphQLContext } from './context.js';

/**
 * An open leaseEvents subscription of a lease's owner keeps a heartbeat lease alive: while it is
 * open, this process marks the lease seen when it opens and then every heartbeatSeconds / 3, so
 * two marks may be missed (a slow database, a pause) before the holder counts as lost. Only the
 * owner's subscriptions count, and only while the lease is live; the first mark that writes
 * nothing stops the timer.
 *
 * A plain iterator, not an async generator: a generator waiting for its next event would not run
 * its `finally` until that event came, and a silent lease whose subscriber is gone would be kept
 * alive by it.
 */
export function keptAlive<T>(ctx: GraphQLContext, leaseId: number, stream: AsyncGenerator<T>): AsyncGenerator<T> {
  let timer: NodeJS.Timeout | undefined;
  let open = true;
  const stop = () => {
    open = false;
    clearTimeout(timer);
  };
  const mark = async () => {
    const heartbeatSeconds = await ctx.services.leases.seen(ctx.actor, leaseId).catch(() => undefined);
    // A failed mark (the database away for a moment) is tried again at the shortest heartbeat.
    if (!open || heartbeatSeconds === null) return;
    timer = setTimeout(() => void mark(), ((heartbeatSeconds ?? 1) * 1000) / 3);
    timer.unref();
  };
  let started = false;
  const iterator: AsyncGenerator<T> = {
    next: (...args) => {
      if (!started) {
        started = true;
        void mark();
      }
      return stream.next(...args);
    },
    return: (value) => {
      stop();
      return stream.return(value);
    },
    throw: (error) => {
      stop();
      return stream.throw(error);
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
