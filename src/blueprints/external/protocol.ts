import { z } from 'zod';

// The wire format of docs/external-provisioner.md. Every answer a provisioner gives is checked
// against these schemas: a provisioner is someone else's code, and a malformed answer must fail
// with a message that names it rather than surface later as an undefined attribute.

/** What a provisioner reports about a box; the attributes of a ready one are what leases match. */
export const providerResource = z.object({
  id: z.string().min(1),
  requestId: z.string().min(1),
  status: z.enum(['pending', 'ready', 'failed']),
  attributes: z.record(z.string(), z.unknown()).optional(),
  message: z.string().optional(),
  /** A pending box's hint for when to look again. */
  retryAfterMs: z.number().int().min(0).optional(),
});

export type ProviderResource = z.infer<typeof providerResource>;

export const providerListEntry = z.object({
  id: z.string().min(1),
  requestId: z.string().min(1),
  status: z.enum(['pending', 'ready', 'failed']),
  /** How long ago the provisioner created it, by its own clock (so no clock needs to agree with ours). */
  ageMs: z.number().min(0).optional(),
});

export type ProviderListEntry = z.infer<typeof providerListEntry>;

export const providerList = z.object({ resources: z.array(providerListEntry) });

export const providerError = z.object({
  error: z.object({
    code: z.string(),
    message: z.string().optional(),
    retryAfterMs: z.number().int().min(0).optional(),
  }),
});

export interface AllocateRequest {
  requestId: string;
  resourceType: string;
  /** What the lease that caused the allocation wants (numbers are minimums). */
  attributes: Record<string, unknown>;
  /** The blueprint's fixed settings for every box (an image, a region). */
  parameters: Record<string, unknown>;
}

/**
 * Request ids name their blueprint, so that a leak sweep only ever touches what its own blueprint
 * asked for, even when several blueprints (or installations, by namespace) share a provisioner.
 */
export const requestIdPrefix = (namespace: string, blueprintId: number) => `${namespace}:bp${blueprintId}:r`;

export const requestIdOf = (namespace: string, blueprintId: number, resourceId: number) =>
  `${requestIdPrefix(namespace, blueprintId)}${resourceId}`;

/** The resource id a request id of this blueprint names; null when it is not one of ours. */
export function resourceIdOf(requestId: string, prefix: string): number | null {
  if (!requestId.startsWith(prefix)) return null;
  const rest = requestId.slice(prefix.length);
  return /^[1-9][0-9]{0,14}$/.test(rest) ? Number(rest) : null;
}
