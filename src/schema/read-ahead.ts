/**
 * `source` mapped through `read`, with up to `limit` reads running at once, yielded in the order
 * of `source`. A subscription that read each event only after yielding the last one would make
 * events that arrived together wait in line for one round trip each, and never let their reads
 * share a statement; read ahead, they are in flight together and leave in source order all the
 * same. A read that fails is thrown when its turn comes, as it would have been in line.
 */
export async function* readAhead<E, R>(
  source: AsyncIterable<E>,
  read: (event: E) => Promise<R>,
  limit: number,
): AsyncGenerator<R> {
  const iterator = source[Symbol.asyncIterator]();
  const reads: Promise<R>[] = [];
  const pull = () => {
    const pending = iterator.next();
    // Awaited once there is room for another read; a failure until then is not unhandled either.
    pending.catch(() => {});
    return pending;
  };
  let next: Promise<IteratorResult<E>> | null = pull();
  const start = (event: E) => {
    const pending = read(event);
    // Awaited in its turn; until then a failure must not count as unhandled.
    pending.catch(() => {});
    reads.push(pending);
  };
  try {
    while (next !== null || reads.length > 0) {
      if (next !== null && reads.length < limit) {
        const head = reads[0];
        const arrived =
          head === undefined
            ? true
            : await Promise.race([
                next.then(() => true),
                head.then(
                  () => false,
                  () => false,
                ),
              ]);
        if (arrived) {
          const event = await next;
          if (event.done) next = null;
          else {
            start(event.value);
            next = pull();
          }
          continue;
        }
      }
      yield await reads.shift()!;
    }
  } finally {
    await iterator.return?.();
  }
}
