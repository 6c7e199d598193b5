import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

// A client of the service's own API that runs lease cycles the way its users do: requestLease
// over HTTP, the ACTIVE change on a graphql-ws leasesChanged subscription, releaseLease, then the
// DESTROYED change. Written here rather than taken from the command line's client, which the
// server does not depend on, and kept to what the warm-up needs.

const REQUEST = `mutation ($input: RequestLeaseInput!) {
  requestLease(input: $input) { __typename ... on RequestLeasePayload { leases { id } } ... on Error { message } }
}`;
const RELEASE = `mutation ($id: ID!) { releaseLease(id: $id) { __typename ... on Error { message } } }`;

export interface CycleTarget {
  graphqlUrl: string;
  token: string;
  resourceType: string;
  /** When the cycles must be done by (Date.now()); waits past it fail. */
  deadline: number;
}

export async function graphql<T>(target: CycleTarget, query: string, variables: Record<string, unknown>): Promise<T> {
  const response = await fetch(target.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${target.token}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(Math.max(1, target.deadline - Date.now())),
  });
  const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
  if (!response.ok || body.errors || !body.data) {
    throw new Error(`HTTP ${response.status}: ${(body.errors ?? []).map((e) => e.message).join('; ')}`);
  }
  return body.data;
}

/**
 * Up to `leases` cycles from `clients` clients at once, each starting its next when its last is
 * done and none starting one after `stopAt` (Date.now()); how many were done.
 */
export async function runLeaseCycles(
  target: CycleTarget,
  leases: number,
  clients: number,
  stopAt: number,
): Promise<number> {
  const ws = createClient({
    url: target.graphqlUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${target.token}` },
    retryAttempts: 0,
  });
  const watcher = new StatusWatcher(ws, target);
  try {
    await watcher.start();
    let started = 0;
    await Promise.all(
      Array.from({ length: Math.min(clients, leases) }, async () => {
        while (started < leases && Date.now() < stopAt) {
          started++;
          await cycle(target, watcher);
        }
      }),
    );
    return started;
  } finally {
    watcher.stop();
    await ws.dispose();
  }
}

async function cycle(target: CycleTarget, watcher: StatusWatcher): Promise<void> {
  const id = await request(target);
  await watcher.until(id, 'ACTIVE');
  await release(target, id);
  await watcher.until(id, 'DESTROYED');
  watcher.forget(id);
}

async function request(target: CycleTarget): Promise<string> {
  const data = await graphql<{ requestLease: { leases?: { id: string }[]; message?: string } }>(target, REQUEST, {
    input: { resourceType: target.resourceType },
  });
  const id = data.requestLease.leases?.[0]?.id;
  if (!id) throw new Error(`requestLease: ${data.requestLease.message}`);
  return id;
}

async function release(target: CycleTarget, id: string): Promise<void> {
  const data = await graphql<{ releaseLease: { __typename: string; message?: string } }>(target, RELEASE, { id });
  if (data.releaseLease.__typename !== 'ReleaseLeasePayload')
    throw new Error(`releaseLease: ${data.releaseLease.message}`);
}

/** The statuses each lease was seen in on one leasesChanged subscription. */
class StatusWatcher {
  private readonly seen = new Map<string, Set<string>>();
  private readonly waiters = new Map<string, { status: string; settle: (error?: Error) => void }[]>();
  private failure: Error | undefined;
  private unsubscribe: () => void = () => {};

  constructor(
    private readonly ws: Client,
    private readonly target: CycleTarget,
  ) {}

  /**
   * Subscribes, and resolves once changes arrive: the server sends nothing to say a subscription
   * is in place, so a probe lease is cycled until its ACTIVE change is seen.
   */
  async start(): Promise<void> {
    this.unsubscribe = this.ws.subscribe<{ leasesChanged: { id: string; status: string } }>(
      {
        query: 'subscription ($type: String!) { leasesChanged(filter: { resourceType: $type }) { id status } }',
        variables: { type: this.target.resourceType },
      },
      {
        next: ({ data, errors }) => {
          if (data) this.record(data.leasesChanged.id, data.leasesChanged.status);
          else this.fail(new Error(`leasesChanged: ${errors?.map((e) => e.message).join('; ')}`));
        },
        error: (error) =>
          this.fail(error instanceof Error ? error : new Error(`leasesChanged ended: ${String(error)}`)),
        complete: () => {},
      },
    );
    for (;;) {
      const probe = await request(this.target);
      const live = await this.until(probe, 'ACTIVE', Date.now() + 500).then(
        () => true,
        (error: Error) => {
          if (this.failure || Date.now() >= this.target.deadline) throw error;
          return false;
        },
      );
      await release(this.target, probe);
      this.forget(probe);
      if (live) return;
    }
  }

  until(id: string, status: string, deadline = this.target.deadline): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.seen.get(id)?.has(status)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`lease ${id} was not ${status} in time`)),
        Math.max(1, deadline - Date.now()),
      );
      const list = this.waiters.get(id) ?? [];
      list.push({
        status,
        settle: (error) => {
          clearTimeout(timer);
          if (error) reject(error);
          else resolve();
        },
      });
      this.waiters.set(id, list);
    });
  }

  forget(id: string): void {
    this.seen.delete(id);
    this.waiters.delete(id);
  }

  stop(): void {
    this.unsubscribe();
  }

  private record(id: string, status: string): void {
    const statuses = this.seen.get(id) ?? new Set<string>();
    statuses.add(status);
    this.seen.set(id, statuses);
    const waiting = this.waiters.get(id);
    if (!waiting) return;
    for (const waiter of waiting) if (waiter.status === status) waiter.settle();
    this.waiters.set(
      id,
      waiting.filter((w) => w.status !== status),
    );
  }

  /** The subscription failed: nothing more will arrive, so every wait ends with its error at once. */
  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiting of this.waiters.values()) for (const waiter of waiting) waiter.settle(this.failure);
    this.waiters.clear();
  }
}
