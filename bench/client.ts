import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { now } from './stats.js';

/** `token`: act as its principal (without one, the bench acts as the local administrator). */
export async function gql<T>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  token?: string,
): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
  if (!response.ok || body.errors || !body.data) {
    throw new Error(`${response.status} ${JSON.stringify(body.errors ?? body).slice(0, 500)}`);
  }
  return body.data;
}

export function wsClient(graphqlUrl: string): Client {
  return createClient({
    url: graphqlUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
  });
}

const requestLeaseMutation = `mutation ($input: RequestLeaseInput!) {
  requestLease(input: $input) { __typename ... on RequestLeasePayload { leases { id } } ... on Error { message } }
}`;

export async function requestLeases(url: string, input: Record<string, unknown>, token?: string): Promise<string[]> {
  const data = await gql<{ requestLease: { leases?: { id: string }[]; message?: string } }>(
    url,
    requestLeaseMutation,
    { input },
    token,
  );
  if (!data.requestLease.leases) throw new Error(`requestLease: ${data.requestLease.message}`);
  return data.requestLease.leases.map((lease) => lease.id);
}

export async function leaseStatus(url: string, id: string): Promise<string> {
  const data = await gql<{ lease: { status: string } | null }>(url, 'query ($id: ID!) { lease(id: $id) { status } }', {
    id,
  });
  return data.lease?.status ?? 'not found';
}

/** Resolves once the lease is ACTIVE (polled: for set-up steps, not for what a row measures). */
export async function untilActive(url: string, id: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await leaseStatus(url, id)) !== 'ACTIVE') {
    if (Date.now() > deadline) throw new Error(`lease ${id} did not become ACTIVE within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A new lease of `resourceType`, once ACTIVE (seen on a subscription, as a client would). */
export async function activeLease(graphqlUrl: string, resourceType: string): Promise<string> {
  const control = wsClient(graphqlUrl);
  const watcher = new LeaseWatcher(control);
  try {
    await watcher.start(graphqlUrl, resourceType);
    const [leaseId] = await requestLeases(graphqlUrl, { resourceType });
    await watcher.when(leaseId!, 'ACTIVE', 30_000);
    return leaseId!;
  } finally {
    watcher.close();
    await control.dispose();
  }
}

const metricsText = async (graphqlUrl: string) => (await fetch(graphqlUrl.replace(/\/graphql$/, '/metrics'))).text();
const sampleOf = (text: string, series: string) =>
  Number(
    text
      .split('\n')
      .find((line) => line.startsWith(`${series} `))
      ?.slice(series.length + 1) ?? Number.NaN,
  );

/** One unlabelled sample of the server's /metrics (NaN when it has none). */
export async function serverMetric(graphqlUrl: string, name: string): Promise<number> {
  return sampleOf(await metricsText(graphqlUrl), name);
}

/** The scheduling passes one server has run for a resource type so far (its pass histograms). */
export interface PassReading {
  passes: number;
  seconds: number;
  granted: number;
}

export async function passReading(graphqlUrl: string, resourceType: string): Promise<PassReading> {
  const text = await metricsText(graphqlUrl);
  const of = (series: string) => sampleOf(text, `${series}{resource_type="${resourceType}"}`) || 0;
  return {
    passes: of('drydock_scheduling_pass_seconds_count'),
    seconds: of('drydock_scheduling_pass_seconds_sum'),
    granted: of('drydock_scheduling_pass_grants_sum'),
  };
}

/** What the passes between two readings took on average: a pass's time and its grants. */
export function passesBetween(before: PassReading, after: PassReading) {
  const passes = after.passes - before.passes;
  return {
    passes,
    meanMs: ((after.seconds - before.seconds) / Math.max(1, passes)) * 1_000,
    grantsEach: (after.granted - before.granted) / Math.max(1, passes),
  };
}

export async function releaseLease(url: string, id: string): Promise<void> {
  const data = await gql<{ releaseLease: { __typename: string; message?: string } }>(
    url,
    'mutation ($id: ID!) { releaseLease(id: $id) { __typename ... on Error { message } } }',
    { id },
  );
  if (data.releaseLease.__typename !== 'ReleaseLeasePayload')
    throw new Error(`releaseLease: ${data.releaseLease.message}`);
}

export async function createHostPool(
  url: string,
  name: string,
  hosts: number,
  resourceLimit?: number,
  attributes: (binding: number) => Record<string, string> = () => ({}),
): Promise<string> {
  const data = await gql<{ createBlueprint: { blueprint?: { id: string }; message?: string } }>(
    url,
    `mutation ($input: CreateBlueprintInput!) {
      createBlueprint(input: $input) { ... on BlueprintPayload { blueprint { id } } ... on Error { message } }
    }`,
    {
      input: {
        name,
        implementation: 'host-pool',
        resourceType: name,
        ...(resourceLimit ? { resourceLimit } : {}),
        config: {
          services: [
            {
              name: 'bench',
              bindings: Array.from({ length: hosts }, (_, i) => ({
                name: `h${i}`,
                address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
                port: 22,
                attributes: attributes(i),
              })),
            },
          ],
        },
      },
    },
  );
  if (!data.createBlueprint.blueprint) throw new Error(`createBlueprint: ${data.createBlueprint.message}`);
  return data.createBlueprint.blueprint.id;
}

/**
 * One `leasesChanged` subscription that tells when each lease reaches a status: the bench does
 * not open a subscription per lease, so what it measures is the server, not subscribe set-up.
 */
export class LeaseWatcher {
  private readonly seen = new Map<string, Map<string, number>>();
  private readonly waiters = new Map<string, { status: string; resolve: (at: number) => void }[]>();
  private stop: () => void = () => {};

  constructor(private readonly client: Client) {}

  /** Resolves once the server has set the subscription up (it sends nothing until a lease changes). */
  async start(graphqlUrl: string, resourceType: string): Promise<void> {
    this.stop = this.client.subscribe<{ leasesChanged: { id: string; status: string } }>(
      { query: `subscription { leasesChanged(filter: { resourceType: "${resourceType}" }) { id status } }` },
      {
        next: ({ data }) => {
          if (data) this.record(data.leasesChanged.id, data.leasesChanged.status, now());
        },
        error: (error) => console.error('leasesChanged failed:', error),
        complete: () => {},
      },
    );
    // A probe lease whose change proves the subscription is live. The server may grant it before
    // the subscription is in place (a grant takes a few milliseconds), and then that change is
    // never seen: probe again until one is.
    const deadline = now() + 60_000;
    for (;;) {
      const [probe] = await requestLeases(graphqlUrl, { resourceType });
      try {
        await this.when(probe!, 'ACTIVE', Math.max(1, Math.min(2_000, deadline - now())));
        await releaseLease(graphqlUrl, probe!);
        return;
      } catch (error) {
        if (now() >= deadline) {
          // Whether the server or the subscription is at fault.
          const status = await leaseStatus(graphqlUrl, probe!).catch(() => 'unknown');
          throw new Error(`${(error as Error).message} (the server says ${status})`);
        }
        await releaseLease(graphqlUrl, probe!).catch(() => {});
        this.forget(probe!);
      }
    }
  }

  private record(id: string, status: string, at: number): void {
    const statuses = this.seen.get(id) ?? new Map<string, number>();
    if (!statuses.has(status)) statuses.set(status, at);
    this.seen.set(id, statuses);
    const waiting = this.waiters.get(id);
    if (!waiting) return;
    for (const waiter of waiting.filter((w) => w.status === status)) waiter.resolve(at);
    this.waiters.set(
      id,
      waiting.filter((w) => w.status !== status),
    );
  }

  /** The time (performance.now) the status was first seen; waits for it if need be. */
  when(id: string, status: string, timeoutMs: number): Promise<number> {
    const at = this.seen.get(id)?.get(status);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`lease ${id} not ${status} within ${timeoutMs} ms`)), timeoutMs);
      const list = this.waiters.get(id) ?? [];
      list.push({
        status,
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
      });
      this.waiters.set(id, list);
    });
  }

  has(id: string, status: string): boolean {
    return this.seen.get(id)?.has(status) ?? false;
  }

  forget(id: string): void {
    this.seen.delete(id);
    this.waiters.delete(id);
  }

  close(): void {
    this.stop();
  }
}
