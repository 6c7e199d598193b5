import type { Lease } from '../../generated/prisma/client.js';
import type { AllocatorOptions } from '../options.js';

/** The order a pass considers waiting leases in: higher priority first, then arrival. */
export function policyOrder(leases: readonly Lease[], _now: Date, _options: AllocatorOptions): Lease[] {
  return [...leases].sort((a, b) => b.priority - a.priority || a.id - b.id);
}
