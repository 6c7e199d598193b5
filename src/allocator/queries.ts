import type { AllocationQueries } from '../blueprints/implementation.js';
import type { Tx } from './context.js';

export function allocationQueries(tx: Tx): AllocationQueries {
  return {
    resources: (blueprintId, statuses) =>
      tx.resource.findMany({ where: { blueprintId, status: { in: [...statuses] } }, orderBy: { id: 'asc' } }),
    liveLeaseCount: (resourceId) => tx.lease.count({ where: { resourceId, status: { in: ['ACQUIRED', 'ACTIVE'] } } }),
  };
}
