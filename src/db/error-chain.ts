/**
 * An error and the errors it wraps, breadth first, each once: its `cause`, and the driver
 * adapter's error that Prisma's errors carry in `meta.driverAdapterError`, which has the
 * database's own code (`originalCode`) and kind. The database's answer may sit at any depth of it.
 */
export function* errorChain(error: unknown): Generator<Record<string, unknown>> {
  const seen = new Set<unknown>();
  const queue: unknown[] = [error];
  while (queue.length > 0) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null || seen.has(e)) continue;
    seen.add(e);
    const fields = e as Record<string, unknown>;
    yield fields;
    queue.push(fields['cause'], (fields['meta'] as Record<string, unknown> | undefined)?.['driverAdapterError']);
  }
}
