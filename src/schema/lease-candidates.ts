import type { BlueprintVerdict, ResourceVerdict } from '../allocator/dry-run.js';
import type { Blocker } from '../allocator/waiting.js';
import { leaseCandidates, type SeenDryRun } from '../services/lease-candidates.js';
import { BlueprintNode } from './blueprint.js';
import { builder } from './builder.js';
import { domainErrors, SlotHolderRef, toProblem, unwrap } from './errors.js';
import { validationError } from '../services/index.js';
import { databaseId } from './ids.js';
import { blockerMessage } from './lease-blocker.js';
import { ResourceNode } from './resource.js';

const ResourceCandidate = builder.objectRef<ResourceVerdict>('ResourceCandidate').implement({
  fields: (t) => ({
    usable: t.boolean({ resolve: (v) => v.reason === null }),
    reason: t.exposeString('reason', {
      nullable: true,
      description: 'Why the lease could not be acquired on it now (e.g. it is draining, a slot it needs is held).',
    }),
    resourceDatabaseId: t.int({ resolve: (v) => v.resource.id }),
    resource: t.field({
      type: ResourceNode,
      nullable: true,
      description: 'Null unless the access policy lets you see it; you still see whether it would serve you.',
      resolve: (v) => v.resource,
    }),
    holders: t.field({ type: [SlotHolderRef], resolve: (v) => v.holders }),
  }),
});

const BlueprintCandidate = builder.objectRef<BlueprintVerdict>('BlueprintCandidate').implement({
  fields: (t) => ({
    blueprint: t.field({
      type: BlueprintNode,
      nullable: true,
      description: 'Never null: only blueprints you may see are listed (see unseenBlueprints).',
      resolve: (v) => v.blueprint,
    }),
    blueprintDatabaseId: t.int({ resolve: (v) => v.blueprint.id }),
    usable: t.boolean({ resolve: (v) => v.reason === null }),
    reason: t.exposeString('reason', {
      nullable: true,
      description: 'Why this blueprint would not serve the request.',
    }),
    canAllocateNow: t.exposeBoolean('canAllocateNow', {
      nullable: true,
      description: 'For usable blueprints: whether it could build a new resource right now.',
    }),
    cannotAllocateNowReason: t.exposeString('cannotAllocateNowReason', {
      nullable: true,
      description: 'For usable blueprints that could not build a new resource now: why (e.g. at its resource limit).',
    }),
    resources: t.field({
      type: [ResourceCandidate],
      description: 'Its active resources, each with whether the lease could be acquired on it now.',
      resolve: (v) => v.resources,
    }),
  }),
});

const CandidatesBlocker = builder.objectRef<Blocker>('CandidatesBlocker').implement({
  description: 'What the lease would wait for whatever its candidates offer, as its blocker would say it.',
  fields: (t) => ({
    reason: t.string({ description: 'A lease blocker reason, e.g. quota.', resolve: (b) => b.reason }),
    message: t.string({ resolve: (b) => blockerMessage(b) }),
    details: t.field({ type: 'JSON', resolve: ({ reason: _reason, ...details }) => details }),
  }),
});

const LeaseCandidatesPayload = builder.objectRef<SeenDryRun>('LeaseCandidatesPayload').implement({
  fields: (t) => ({
    wouldBeServed: t.boolean({
      description:
        'True when nothing would hold the lease back (`blocker`) and some resource could take it now or some blueprint could build one.',
      resolve: ({ blocker, blueprints }) =>
        blocker === null &&
        blueprints.some((b) => b.reason === null && (b.canAllocateNow || b.resources.some((r) => r.reason === null))),
    }),
    blocker: t.field({
      type: CandidatesBlocker,
      nullable: true,
      description:
        'Set when the lease would wait whatever its candidates offer (you are at your quota of the type); null otherwise.',
      resolve: (p) => p.blocker,
    }),
    blueprints: t.field({
      type: [BlueprintCandidate],
      description: 'The blueprints yielding the type that you may see, each with its verdict.',
      resolve: (p) => p.blueprints,
    }),
    unseenBlueprints: t.int({
      description:
        'How many blueprints yield the type that the access policy does not let you see (you are not authorized on them, made none, hold none of their resources). None of them would serve you; ask an administrator for an authorization.',
      resolve: (p) => p.unseenBlueprints,
    }),
  }),
});

const LeaseCandidatesInput = builder.inputType('LeaseCandidatesInput', {
  fields: (t) => ({
    resourceType: t.string({ required: true }),
    attributes: t.field({ type: 'JSON' }),
    blueprintIds: t.globalIDList({ for: BlueprintNode }),
  }),
});

builder.queryField('leaseCandidates', (t) =>
  t.field({
    type: LeaseCandidatesPayload,
    description:
      'A dry run of requestLease: which blueprints and resources would serve this request, and why the others would not. Creates nothing.',
    errors: { types: [...domainErrors], directResult: true },
    args: { input: t.arg({ type: LeaseCandidatesInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const attributes = input.attributes ?? {};
      if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) {
        throw toProblem(validationError(['attributes'], 'attributes must be a JSON object'));
      }
      const blueprintIds = (input.blueprintIds ?? []).map((id) => databaseId(id) ?? -1);
      return unwrap(
        await leaseCandidates(
          { db: ctx.db, registry: ctx.services.registry, options: ctx.services.options },
          ctx.actor,
          { resourceType: input.resourceType, attributes: attributes as Record<string, unknown>, blueprintIds },
        ),
      );
    },
  }),
);
