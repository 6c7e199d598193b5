import type { BlueprintVerdict, ResourceVerdict } from '../allocator/dry-run.js';
import { leaseCandidates } from '../services/lease-candidates.js';
import { BlueprintNode } from './blueprint.js';
import { builder } from './builder.js';
import { domainErrors, SlotHolderRef, unwrap, ValidationProblem } from './errors.js';
import { databaseId } from './ids.js';
import { ResourceNode } from './resource.js';

const ResourceCandidate = builder.objectRef<ResourceVerdict>('ResourceCandidate').implement({
  fields: (t) => ({
    usable: t.boolean({ resolve: (v) => v.reason === null }),
    reason: t.exposeString('reason', { nullable: true, description: 'Why the lease could not be acquired on it now.' }),
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
      description: 'Null unless the access policy lets you see it (e.g. you are not authorized on it).',
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
    resources: t.field({
      type: [ResourceCandidate],
      description: 'Its active resources, each with whether the lease could be acquired on it now.',
      resolve: (v) => v.resources,
    }),
  }),
});

const LeaseCandidatesPayload = builder
  .objectRef<{ blueprints: BlueprintVerdict[] }>('LeaseCandidatesPayload')
  .implement({
    fields: (t) => ({
      wouldBeServed: t.boolean({
        description: 'True when some resource could take the lease now or some blueprint could build one.',
        resolve: ({ blueprints }) =>
          blueprints.some((b) => b.reason === null && (b.canAllocateNow || b.resources.some((r) => r.reason === null))),
      }),
      blueprints: t.field({ type: [BlueprintCandidate], resolve: (p) => p.blueprints }),
    }),
  });

const LeaseCandidatesInput = builder.inputType('LeaseCandidatesInput', {
  fields: (t) => ({
    resourceType: t.string({ required: true }),
    attributes: t.field({ type: 'JSON' }),
    blueprintIds: t.globalIDList(),
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
        throw new ValidationProblem('attributes must be a JSON object', ['attributes']);
      }
      const blueprintIds = (input.blueprintIds ?? []).map((id) =>
        id.typename === 'Blueprint' ? (databaseId(id) ?? -1) : -1,
      );
      const verdicts = unwrap(
        await leaseCandidates(
          { db: ctx.db, registry: ctx.services.registry, options: ctx.services.options },
          ctx.actor,
          { resourceType: input.resourceType, attributes: attributes as Record<string, unknown>, blueprintIds },
        ),
      );
      return { blueprints: verdicts };
    },
  }),
);
