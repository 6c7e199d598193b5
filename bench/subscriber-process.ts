import type { Client } from 'graphql-ws';
import { wsClient } from './client.js';
import { followLease, isRelease, type LeaseEvent } from './rows/fanout.js';

/**
 * A child process of the spread row holding stock graphql-ws subscribers of one server, so that
 * no process of the bench passes its open-file limit (one descriptor per socket). Driven over IPC.
 * Receive times are Date.now(): the one clock every process on the machine reads alike.
 */
export type SubscriberCommand =
  | { type: 'open'; graphqlUrl: string; leaseId: string; count: number; batch: number }
  | { type: 'collect'; timeoutMs: number }
  | { type: 'close' };

export type SubscriberReport =
  /** Totals so far: connections the server acknowledged, and those that failed or were refused. */
  | { type: 'opened'; connected: number; failed: number }
  /** When each subscriber received the release (Date.now(), ms since the epoch); failures so far. */
  | { type: 'received'; at: number[]; failed: number }
  | { type: 'closed' };

const clients: Client[] = [];
const receivedAt: number[] = [];
let connected = 0;
let failed = 0;
let onReceived = () => {};
/** Set once the parent closes the subscribers: their ends are not failures. */
let closing = false;

const send = (report: SubscriberReport) =>
  new Promise<void>((resolve, reject) =>
    process.send!(report, (error: Error | null) => (error ? reject(error) : resolve())),
  );

/**
 * One subscriber; resolves once the server has acknowledged its connection or it has failed. A
 * connection lost or a subscription refused later counts as failed from then on.
 */
function subscribe(graphqlUrl: string, leaseId: string): Promise<void> {
  const client = wsClient(graphqlUrl);
  clients.push(client);
  // 'ended': the server completed the subscription (the lease is DESTROYED), and the lazy client
  // then closes its socket, which is no failure.
  let state: 'opening' | 'open' | 'ended' | 'failed' = 'opening';
  let got = false;
  return new Promise((resolve) => {
    const fail = () => {
      if (state === 'failed' || state === 'ended' || closing) return;
      if (state === 'open') connected--;
      state = 'failed';
      failed++;
      resolve();
      onReceived();
    };
    client.on('connected', () => {
      if (state !== 'opening') return;
      state = 'open';
      connected++;
      resolve();
    });
    client.on('closed', fail);
    client.subscribe<LeaseEvent>(
      { query: followLease, variables: { id: leaseId } },
      {
        next: ({ data }) => {
          if (got || !isRelease(data)) return;
          got = true;
          receivedAt.push(Date.now());
          onReceived();
        },
        error: fail,
        complete: () => {
          if (state === 'open') state = 'ended';
        },
      },
    );
  });
}

async function open(command: Extract<SubscriberCommand, { type: 'open' }>): Promise<void> {
  // A batch at a time, so that connecting measures the server rather than a queue of handshakes.
  for (let i = 0; i < command.count; i += command.batch) {
    const batch = Math.min(command.batch, command.count - i);
    await Promise.all(Array.from({ length: batch }, () => subscribe(command.graphqlUrl, command.leaseId)));
  }
  await send({ type: 'opened', connected, failed });
}

/** Waits until every connected subscriber has the release, or for `timeoutMs` at the most. */
async function collect(timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    onReceived = () => {
      if (receivedAt.length < connected) return;
      clearTimeout(timer);
      resolve();
    };
    onReceived();
  });
  await send({ type: 'received', at: receivedAt, failed });
}

async function close(): Promise<void> {
  closing = true;
  await Promise.all(clients.map((client) => client.dispose()));
  await send({ type: 'closed' });
  process.disconnect();
}

process.on('message', (command: SubscriberCommand) => {
  const done =
    command.type === 'open' ? open(command) : command.type === 'collect' ? collect(command.timeoutMs) : close();
  done.catch((error: unknown) => {
    process.stderr.write(`[subscriber ${process.pid}] ${String(error)}\n`);
    process.exit(1);
  });
});
