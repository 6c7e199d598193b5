import { CliHeartbeatLeaseDocument } from '../../generated/graphql/graphql.js';
import { execute, type Connection } from '../client/http.js';

/**
 * Keeps leases requested with a heartbeat alive while this process runs: a heartbeat for each
 * every third of its heartbeat period, so that two lost ones still leave it alive. A failed
 * heartbeat is only tried again at the next tick (the server being away for a moment must not end
 * the command); the lease ends by itself if this process dies. Returns the stop function.
 */
export function keepAlive(connection: Connection, leaseIds: string[], heartbeatSeconds: number): () => void {
  const beat = () => {
    for (const id of leaseIds) void execute(connection, CliHeartbeatLeaseDocument, { id }).catch(() => {});
  };
  const timer = setInterval(beat, (heartbeatSeconds * 1000) / 3);
  return () => clearInterval(timer);
}
