import net from 'node:net';

/**
 * Counts the writes made to sockets connected to `port` (PostgreSQL's): statements sent together
 * leave in one write, one round trip. `restore` puts the socket methods back.
 */
export function countSocketWrites(port: number): { count(): number; restore(): void } {
  let writes = 0;
  const restore: (() => void)[] = [];
  for (const method of ['_write', '_writev'] as const) {
    const real = net.Socket.prototype[method] as (...a: unknown[]) => unknown;
    (net.Socket.prototype as unknown as Record<string, unknown>)[method] = function (
      this: net.Socket,
      ...a: unknown[]
    ) {
      if (this.remotePort === port) writes++;
      return real.apply(this, a);
    };
    restore.push(() => ((net.Socket.prototype as unknown as Record<string, unknown>)[method] = real));
  }
  return { count: () => writes, restore: () => restore.forEach((undo) => undo()) };
}
