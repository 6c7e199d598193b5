import type { Lease } from '../generated/prisma/client.js';

/**
 * What a lease asks for, as far as the pool is concerned: two leases of one demand could use
 * exactly the same resources and capacity. Within a pass, once a lease of a demand could not be
 * served, none behind it of the same demand can be either (it would get the same answer), so
 * they are not tried: this is what keeps a pass's cost independent of the queue's length.
 */
export type Demand = Pick<Lease, 'attributes' | 'allowedBlueprintIds' | 'authorizingPrincipalId'>;

export function demandKey(lease: Demand): string {
  // jsonb comes back with its keys in a canonical order, so equal attributes give equal text.
  return `${JSON.stringify(lease.attributes ?? {})}|${lease.allowedBlueprintIds.join(',')}|${lease.authorizingPrincipalId ?? ''}`;
}
