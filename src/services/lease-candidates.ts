import { isAdmin } from '../access/actor.js';
import { visibleWhere } from '../access/policy.js';
import { z } from 'zod';
import type { Lease } from '../generated/prisma/client.js';
import type { AllocatorDeps } from '../allocator/context.js';
import { explainCandidates, type BlueprintVerdict, type DryRun } from '../allocator/dry-run.js';
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

export interface SeenDryRun extends DryRun {
  /** Blueprints yielding the type that the actor may not see: left out of `blueprints`, counted. */
  unseenBlueprints: number;
}

/**
 * Which blueprints and resources would serve this request, and why the others would not, as the
 * allocator would see it for `actor` now, with what would make it wait whatever they offer (the
 * actor's quota). Creates nothing. Only blueprints the access policy lets the actor see are named:
 * naming the others would tell it that they exist and yield its type (as a lease's blocker does
 * not either). None of those could serve it, since a blueprint it is authorized on is one it sees.
 */
export async function leaseCandidates(
  deps: Pick<AllocatorDeps, 'db' | 'registry' | 'options'>,
  actor: Actor,
  input: CandidatesRequest,
): Promise<Result<SeenDryRun>> {
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
  const seen = isAdmin(actor) ? dryRun.blueprints : await seenBy(deps, actor, dryRun.blueprints);
  return ok({ ...dryRun, blueprints: seen, unseenBlueprints: dryRun.blueprints.length - seen.length });
}

async function seenBy(
  deps: Pick<AllocatorDeps, 'db'>,
  actor: Actor,
  verdicts: BlueprintVerdict[],
): Promise<BlueprintVerdict[]> {
  const ids = verdicts.map((v) => v.blueprint.id);
  const rows = await deps.db.prisma.blueprint.findMany({
    where: { AND: [{ id: { in: ids } }, visibleWhere(actor, 'Blueprint')] },
    select: { id: true },
  });
  const visible = new Set(rows.map((row) => row.id));
  return verdicts.filter((v) => visible.has(v.blueprint.id));
}
