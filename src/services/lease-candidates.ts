import { isAdmin } from '../access/actor.js';
import { z } from 'zod';
import type { Lease } from '../generated/prisma/client.js';
import type { AllocatorDeps } from '../allocator/context.js';
import { explainCandidates, type DryRun } from '../allocator/dry-run.js';
import { fail, ok, type Result } from '../allocator/result.js';
import { unsavedLease } from '../allocator/unsaved-lease.js';
import type { Actor } from './actor.js';
import { fromZod, inputMessages } from './validation.js';

export interface CandidatesRequest {
  resourceType: string;
  attributes?: Record<string, unknown>;
  blueprintIds?: number[];
}

const request = z.object({
  resourceType: z.string().trim().min(1, 'a resource type is required').max(100),
  attributes: z.record(z.string(), z.unknown()).default({}),
  blueprintIds: z.array(z.number().int().positive()).default([]),
});

/**
 * Which blueprints and resources would serve this request, and why the others would not, as the
 * allocator would see it for `actor` now, with what would make it wait whatever they offer (the
 * actor's quota). Creates nothing.
 */
export async function leaseCandidates(
  deps: Pick<AllocatorDeps, 'db' | 'registry' | 'options'>,
  actor: Actor,
  input: CandidatesRequest,
): Promise<Result<DryRun>> {
  const parsed = request.safeParse(input, inputMessages);
  if (!parsed.success) return fail(fromZod(parsed.error));
  const lease = unsavedLease(
    {
      id: 0,
      resourceType: parsed.data.resourceType,
      attributes: parsed.data.attributes as Lease['attributes'],
      ownerId: actor.principalId,
      authorizingPrincipalId: actor.principalId,
      allowedBlueprintIds: parsed.data.blueprintIds,
    },
    deps.options.clock(),
  );
  const dryRun = await deps.db.prisma.$transaction((tx) =>
    explainCandidates(tx, deps.registry, lease, { bypassAuthorizations: isAdmin(actor) }),
  );
  return ok(dryRun);
}
