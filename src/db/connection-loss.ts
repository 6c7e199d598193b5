import { errorChain } from './error-chain.js';

// A long-lived reader (a subscription) outlives database outages: a connection the server
// terminated, a restart, a failover. Requests and queue jobs simply fail and are retried by their
// callers; a subscription has no caller to retry it, and failing it would make every dashboard
// reconnect and re-read at once. Its reads wait out a short outage instead.

// Driver adapter error kinds and Prisma codes that mean "the connection went away", not "the query
// is wrong".
const LOST_KINDS = new Set(['ConnectionClosed', 'DatabaseNotReachable', 'SocketTimeout', 'TooManyConnections']);
const LOST_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017']);
// SQLSTATE class 08 (connection exception) and 57P01-57P03 (administrator/crash shutdown, cannot
// connect now).
const LOST_SQLSTATE = /^(08|57P0[1-3])/;
// The last: pg's answer for a pooled client whose connection broke inside a transaction (a
// snapshot read, as the dashboard subscriptions do, meets it where a single statement does not).
const LOST_MESSAGE =
  /Connection terminated|Server has closed the connection|ECONNRESET|ECONNREFUSED|connection error and is not queryable/;

export function isConnectionLoss(error: unknown): boolean {
  for (const { code, kind, message } of errorChain(error)) {
    if (typeof kind === 'string' && LOST_KINDS.has(kind)) return true;
    if (typeof code === 'string' && (LOST_PRISMA_CODES.has(code) || LOST_SQLSTATE.test(code))) return true;
    if (typeof message === 'string' && LOST_MESSAGE.test(message)) return true;
  }
  return false;
}

export interface OutageOptions {
  /** How long to keep trying before giving up with the last error. */
  readonly patienceMs?: number;
  readonly signal?: AbortSignal;
}

/** Runs `read`, again after a pause while it fails for a lost connection, for up to `patienceMs`. */
export async function readThroughOutage<T>(read: () => Promise<T>, options: OutageOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.patienceMs ?? 30_000);
  for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
    try {
      return await read();
    } catch (error) {
      if (!isConnectionLoss(error) || Date.now() + delay > deadline || options.signal?.aborted) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
