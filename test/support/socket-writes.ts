import net from 'node:net';

/**
 * Counts the writes made to sockets connected to `port` (PostgreSQL's): statements sent together
 * leave in one write, one round trip. `count` is every such socket's writes; `countOf` one
 * socket's, for a test whose other connections (a poll, a lock holder) write meanwhile.
 * `restore` puts the socket methods back.
 */
export function countSocketWrites(port: number): {
  count(): number;
  countOf(socket: net.Socket): number;
  restore(): void;
} {
  let writes = 0;
  const bySocket = new WeakMap<net.Socket, number>();
  const restore: (() => void)[] = [];
  for (const method of ['_write', '_writev'] as const) {
    const real = net.Socket.prototype[method] as (...a: unknown[]) => unknown;
    (net.Socket.prototype as unknown as Record<string, unknown>)[method] = function (
      this: net.Socket,
      ...a: unknown[]
    ) {
      if (this.remotePort === port) {
        writes++;
        bySocket.set(this, (bySocket.get(this) ?? 0) + 1);
      }
      return real.apply(this, a);
    };
    restore.push(() => ((net.Socket.prototype as unknown as Record<string, unknown>)[method] = real));
  }
  return {
    count: () => writes,
    countOf: (socket) => bySocket.get(socket) ?? 0,
    restore: () => restore.forEach((undo) => undo()),
  };
}
