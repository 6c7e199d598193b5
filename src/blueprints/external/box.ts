import type { Resource } from '../../generated/prisma/client.js';

// What the external blueprint keeps in a resource's attributes. A hook outside a transaction can
// write nothing but the attributes it returns on activation, so the provisioner's id is learned
// then; everything else the provisioner reported sits next to it, at the top level, where leases
// match it and users see it.

/** The reserved attribute key; a provisioner attribute of that name is dropped. */
export const BOX_KEY = 'external';

export interface BoxRecord {
  /** What the lease that caused the allocation asked for (sent with every allocate). */
  requested: Record<string, unknown>;
  /** The provisioner's id, once the box opened. */
  providerId?: string;
}

export function boxRecord(resource: Resource): BoxRecord {
  const value = (resource.attributes as Record<string, unknown> | null)?.[BOX_KEY];
  const record = (value && typeof value === 'object' ? value : {}) as Partial<BoxRecord>;
  return {
    requested: record.requested ?? {},
    ...(typeof record.providerId === 'string' ? { providerId: record.providerId } : {}),
  };
}

/** The box's own attributes, as the provisioner reported them (empty while it is pending). */
export function boxAttributes(attributes: unknown): Record<string, unknown> {
  const { [BOX_KEY]: _ours, ...theirs } = (attributes ?? {}) as Record<string, unknown>;
  return theirs;
}
