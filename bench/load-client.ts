/**
 * The overload row's clients, in a process of their own (forked by rows/overload.ts): a load
 * generator sharing the server's event loop or its process would slow the requests it times, and
 * fetch costs more per request than the server's refusal does. node:http with keep-alive sockets
 * and one body serialized up front keep the client's cost per request small.
 */
import { Agent, request } from 'node:http';
import { now, sleep } from './stats.js';

export type Outcome = { ms: number; kind: 'admitted' | 'refused' | 'lost' | 'unanswered'; status: number };

/** What the parent asks for: closed-loop clients (each sends when its last is answered) or an open-loop rate. */
export type LoadCommand =
  | { kind: 'closed'; url: string; query: string; clients: number; seconds: number }
  | { kind: 'open'; url: string; query: string; perSecond: number; seconds: number; connections: number };

const TIMEOUT_MS = 30_000;
/**
 * Connections are opened before the offer and reused: opened on demand, a burst of thousands
 * overflows the server's accept backlog, and a dropped SYN is retried after 1, 3, 7 s, which times
 * TCP's back-off instead of the server. A request that finds every connection busy waits for one
 * in the client, and that wait counts in its latency. FIFO keeps every connection in use, so none
 * idles past the server's keep-alive timeout.
 */
let agent = new Agent({ keepAlive: true, maxSockets: 16, scheduling: 'fifo' });

async function openConnections(url: string, connections: number): Promise<void> {
  agent.destroy();
  agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, scheduling: 'fifo' });
  const health = new URL('/healthz', url);
  // All at once, so each takes a connection of its own (fewer than the server's accept backlog).
  await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<void>((resolve, reject) =>
          request(health, { agent }, (res) => res.resume().on('end', resolve))
            .on('error', reject)
            .end(),
        ),
    ),
  );
}

function sender(url: string, query: string): () => Promise<Outcome> {
  const body = Buffer.from(JSON.stringify({ query }));
  const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
  return () =>
    new Promise<Outcome>((resolve) => {
      const start = now();
      const req = request(url, { method: 'POST', agent, headers, timeout: TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const ms = now() - start;
          const status = res.statusCode ?? 0;
          if (status === 503 || status === 429) return resolve({ ms, kind: 'refused', status });
          const answer = JSON.parse(Buffer.concat(chunks).toString()) as { data?: unknown; errors?: unknown };
          resolve({ ms, kind: status === 200 && answer.data && !answer.errors ? 'admitted' : 'lost', status });
        });
        res.on('error', () => resolve({ ms: now() - start, kind: 'unanswered', status: 0 }));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve({ ms: now() - start, kind: 'unanswered', status: 0 }));
      req.end(body);
    });
}

async function closedLoop(send: () => Promise<Outcome>, clients: number, seconds: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const until = now() + seconds * 1_000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (now() < until) outcomes.push(await send());
    }),
  );
  return outcomes;
}

/** Requests go out on schedule whether or not earlier ones were answered, as independent clients would send them. */
async function openLoop(send: () => Promise<Outcome>, perSecond: number, seconds: number): Promise<Outcome[]> {
  const pending: Promise<Outcome>[] = [];
  const start = now();
  const end = start + seconds * 1_000;
  while (now() < end) {
    const due = Math.floor(((now() - start) / 1_000) * perSecond);
    while (pending.length < due) pending.push(send());
    await sleep(1);
  }
  return Promise.all(pending);
}

export async function runLoad(command: LoadCommand): Promise<Outcome[]> {
  if (command.kind === 'closed')
    return closedLoop(sender(command.url, command.query), command.clients, command.seconds);
  await openConnections(command.url, command.connections);
  return openLoop(sender(command.url, command.query), command.perSecond, command.seconds);
}

// Forked: each command the parent sends is answered with its outcomes.
if (process.send) {
  process.on('message', (command: LoadCommand) => {
    void runLoad(command).then((outcomes) => process.send!(outcomes));
  });
}
