import type { Lease } from '../../generated/prisma/client.js';
import type { Waiting } from './policy-order.js';

/** One unit of a pass's order: a lease, or a gang (its first part stands for it, `parts` all). */
export interface Unit extends Waiting {
  lease: Lease;
  /** A gang's parts, every one of them (read whole); undefined for a single lease. */
  parts?: Lease[];
}
