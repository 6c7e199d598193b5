import { createHostPool, gql, requestLeases, untilActive } from '../client.js';

export interface MixedOrderResult {
  owners: number;
  leases: number;
  /** The first entries of the queue the next pass serves: owner and priority of each. */
  queueHead: string[];
  /** Grant order once capacity appeared, as owner:priority, first `shown`. */
  served: string[];
  /** Whether the grants went in non-increasing priority. */
  priorityOrdered: boolean;
}

const tokenMutation = `mutation ($input: CreateApiTokenInput!) {
  createApiToken(input: $input) { ... on CreateApiTokenPayload { token } ... on Error { message } }
}`;

/**
 * A mixed-priority load from several owners queued behind a pool with no room (its one allowed
 * host is taken by another platform): the queue shows the order the pass will serve; raising the
 * limit lets one pass serve them all, and the order of their acquisitions is reported.
 */
export async function mixedOrder(
  graphqlUrl: string,
  resourceType: string,
  options: { owners: number; perOwner: number },
): Promise<MixedOrderResult> {
  const blueprintId = await createHostPool(graphqlUrl, resourceType, 2, 1, (i) => ({ platform: i === 0 ? 'a' : 'b' }));
  const [holder] = await requestLeases(graphqlUrl, { resourceType, attributes: { platform: 'a' } });
  await untilActive(graphqlUrl, holder!);
  const owners: { name: string; token: string }[] = [];
  for (let i = 0; i < options.owners; i++) {
    const name = `bench-owner-${i}`;
    const data = await gql<{ createApiToken: { token?: string; message?: string } }>(graphqlUrl, tokenMutation, {
      input: { name: 'bench', principalName: name },
    });
    if (!data.createApiToken.token) throw new Error(`createApiToken: ${data.createApiToken.message}`);
    owners.push({ name, token: data.createApiToken.token });
    const viewer = await gql<{ viewer: { id: string } }>(
      graphqlUrl,
      '{ viewer { id } }',
      {},
      data.createApiToken.token,
    );
    const asked = await gql<{ requestBlueprintAuthorization: { authorization?: { id: string } } }>(
      graphqlUrl,
      `mutation ($b: ID!, $p: ID!) { requestBlueprintAuthorization(blueprintId: $b, principalId: $p) {
        ... on AuthorizationPayload { authorization { id } } } }`,
      { b: blueprintId, p: viewer.viewer.id },
    );
    await gql(
      graphqlUrl,
      'mutation ($id: ID!) { setBlueprintAuthorization(id: $id, state: AUTHORIZED) { __typename } }',
      { id: asked.requestBlueprintAuthorization.authorization!.id },
    );
  }
  // Owners may lower their priority; raising it needs the right to.
  const priorities = [-2, 0, -1, 0];
  const byId = new Map<string, string>();
  for (let round = 0; round < options.perOwner; round++)
    for (const owner of owners) {
      const priority = priorities[(round + owners.indexOf(owner)) % priorities.length]!;
      const [id] = await requestLeases(
        graphqlUrl,
        { resourceType, priority, attributes: { platform: 'b' } },
        owner.token,
      );
      byId.set(id!, `${owner.name.slice(-1)}:${priority}`);
    }
  const queue = await gql<{ queue: { entries?: { position: number; lease: { id: string } | null }[] } }>(
    graphqlUrl,
    'query ($t: String!) { queue(resourceType: $t, first: 100) { ... on Queue { entries { position lease { id } } } } }',
    { t: resourceType },
  );
  const queueHead = (queue.queue.entries ?? [])
    .slice(0, 8)
    .map((e) => (e.lease ? (byId.get(e.lease.id) ?? '?') : 'anon'));
  await gql(
    graphqlUrl,
    'mutation ($id: ID!) { updateBlueprint(id: $id, input: { resourceLimit: 2 }) { __typename } }',
    {
      id: blueprintId,
    },
  );
  const ids = [...byId.keys()];
  const acquired = new Map<string, string>();
  const deadline = Date.now() + 60_000;
  while (acquired.size < ids.length && Date.now() < deadline) {
    for (const id of ids) {
      if (acquired.has(id)) continue;
      const data = await gql<{ lease: { logs: { cursor: string; type: string }[] } | null }>(
        graphqlUrl,
        'query ($id: ID!) { lease(id: $id) { logs { cursor type } } }',
        { id },
      );
      const log = data.lease?.logs.find((l) => l.type === 'lease-acquired');
      if (log) acquired.set(id, log.cursor);
    }
    if (acquired.size < ids.length) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const served = [...acquired].sort((a, b) => Number(BigInt(a[1]) - BigInt(b[1]))).map(([id]) => byId.get(id)!);
  const levels = served.map((s) => Number(s.split(':')[1]));
  return {
    owners: options.owners,
    leases: ids.length,
    queueHead,
    served: served.slice(0, 12),
    priorityOrdered: levels.every((p, i) => i === 0 || p <= levels[i - 1]!),
  };
}
