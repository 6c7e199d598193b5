import { refusalAsSeen } from './hidden.js';
import { z } from 'zod';
import type { Blueprint, Prisma } from '../generated/prisma/client.js';
import { blueprintPrincipalId } from '../allocator/blueprint-principal.js';
import type { AllocatorDeps, TxContext } from '../allocator/context.js';
import { inTransaction } from '../allocator/transaction.js';
import { takeBuildTurn } from '../allocator/build-resource.js';
import { bookMaintenance } from '../allocator/maintenance.js';
import { bindBlueprint } from '../allocator/blueprints.js';
import { drainForMaintenance } from '../allocator/drain.js';
import { conflict, notFound, validationProblems, type ValidationIssue } from '../domain-errors.js';
import { writeLog } from '../allocator/logs.js';
import { fail, ok, type Result } from '../allocator/result.js';
import { schedulePass, scheduleWarmPool } from '../allocator/jobs.js';
import { may } from '../access/policy.js';
import type { Actor } from './actor.js';
import { transportProblems, type TransportPolicy } from '../transports/config-problems.js';
import { referenceProblems } from './config-references.js';
import { fromZod, inputMessages, zodIssues } from './validation.js';
import { warmPoolFields, warmPoolProblems } from './warm-pool-input.js';

export interface BlueprintInput {
  name: string;
  implementation: string;
  /** Defaults to the implementation's resource type. */
  resourceType?: string;
  config: unknown;
  resourceLimit?: number | null;
  /** Idle resources kept ready (see allocator/warm-pool.ts); 0: none. */
  minReady?: number;
  /** The lease attributes the warm pool builds its resources for. */
  warmAttributes?: Record<string, unknown>;
}

export type BlueprintPatch = Partial<Omit<BlueprintInput, 'implementation'>>;

export interface BlueprintService {
  create(actor: Actor, input: BlueprintInput): Promise<Result<Blueprint>>;
  update(actor: Actor, id: number, patch: BlueprintPatch): Promise<Result<Blueprint>>;
  setDisabled(actor: Actor, id: number, disabled: boolean): Promise<Result<Blueprint>>;
  get(id: number): Promise<Result<Blueprint>>;
  /** The implementations this process knows, for pickers and docs. */
  implementations(): { key: string; resourceType: string; description: string | undefined }[];
}

const common = z.object({
  name: z.string().trim().min(1, 'a name is required').max(200),
  resourceType: z.string().trim().min(1).max(100).optional(),
  resourceLimit: z.number().int().positive('the resource limit must be positive').max(10_000).nullable().optional(),
  ...warmPoolFields,
});

/** `transports`: the operator's switches a config's transports must respect (ALLOW_LOCAL_TRANSPORT). */
export function blueprintService(deps: AllocatorDeps, transports: TransportPolicy): BlueprintService {
  const { db, registry } = deps;

  /**
   * The config as the implementation reads it, with every problem at once: unknown keys, wrong
   * values, transports that could never run a command, and names of credentials or blueprints
   * that do not exist. `extra` are the problems already found in the rest of the input, so that
   * one answer lists them all.
   */
  async function validateConfig(
    implementationKey: string,
    config: unknown,
    extra: ValidationIssue[],
  ): Promise<Result<unknown>> {
    const implementation = registry.get(implementationKey);
    if (!implementation) {
      const known = registry
        .list()
        .map((i) => `"${i.key}"`)
        .join(', ');
      return fail(
        validationProblems([
          ...extra,
          {
            path: ['implementation'],
            message: `unknown blueprint implementation "${implementationKey}"; known: ${known}`,
          },
        ]),
      );
    }
    const parsed = implementation.configSchema.safeParse(config, inputMessages);
    if (!parsed.success) return fail(validationProblems([...extra, ...zodIssues(parsed.error, ['config'])]));
    const problems = [
      ...extra,
      ...transportProblems(implementation.transports?.(parsed.data) ?? [], transports).map((p) => ({
        ...p,
        path: ['config', ...p.path],
      })),
      ...(await referenceProblems(db, implementation.references?.(parsed.data) ?? [])),
    ];
    return problems.length > 0 ? fail(validationProblems(problems)) : ok(parsed.data);
  }

  /** The blueprint `actor` may edit; one it may not even see answers as one that does not exist. */
  async function editableBlueprint(actor: Actor, id: number): Promise<Result<Blueprint>> {
    const existing = await db.prisma.blueprint.findUnique({ where: { id } });
    if (!existing) return fail(notFound('blueprint', id));
    const refused = await refusalAsSeen(db.prisma, actor, may(actor, { kind: 'blueprint.edit', blueprint: existing }), {
      type: 'Blueprint',
      entity: 'blueprint',
      id,
    });
    return refused ? fail(refused) : ok(existing);
  }

  async function nameTaken(name: string, exceptId?: number) {
    const existing = await db.prisma.blueprint.findUnique({ where: { name }, select: { id: true } });
    return existing !== null && existing.id !== exceptId;
  }

  /**
   * Blueprint changes can create capacity: waiting leases get a look at once. Resources the config
   * now takes out of service (or puts back) are drained (or undrained) with the change.
   */
  async function changed(ctx: TxContext, blueprint: Blueprint, authorId: number | null = null) {
    const loaded = bindBlueprint(registry, blueprint);
    if (loaded) await drainForMaintenance(ctx, loaded, authorId);
    schedulePass(ctx, blueprint.resourceType);
    bookMaintenance(ctx, registry, blueprint);
    scheduleWarmPool(ctx, blueprint.id);
  }

  return {
    async create(actor, input) {
      const refused = may(actor, { kind: 'blueprint.create' });
      if (refused) return fail(refused);
      const parsed = common.safeParse(input, inputMessages);
      const config = await validateConfig(
        input.implementation,
        input.config,
        parsed.success ? [] : zodIssues(parsed.error),
      );
      if (!config.ok) return config;
      if (!parsed.success) return fail(fromZod(parsed.error));
      const implementation = registry.get(input.implementation)!;
      const warm = warmPoolProblems(implementation, {
        id: 0,
        name: parsed.data.name,
        resourceType: parsed.data.resourceType ?? implementation.resourceType,
        resourceLimit: parsed.data.resourceLimit ?? null,
        minReady: parsed.data.minReady ?? 0,
        warmAttributes: (parsed.data.warmAttributes ?? {}) as Prisma.JsonObject,
        config: config.value,
      });
      if (warm.length > 0) return fail(validationProblems(warm));
      if (await nameTaken(parsed.data.name)) return fail(conflict(`a blueprint named "${parsed.data.name}" exists`));
      const blueprint = await inTransaction(deps, async (ctx) => {
        const created = await ctx.tx.blueprint.create({
          data: {
            name: parsed.data.name,
            implementation: implementation.key,
            resourceType: parsed.data.resourceType ?? implementation.resourceType,
            config: config.value as Prisma.InputJsonValue,
            resourceLimit: parsed.data.resourceLimit ?? null,
            minReady: parsed.data.minReady ?? 0,
            warmAttributes: (parsed.data.warmAttributes ?? {}) as Prisma.InputJsonValue,
            createdById: actor.principalId,
          },
        });
        await writeLog(ctx, {
          type: 'blueprint-created',
          data: { name: created.name, implementation: created.implementation },
          blueprintId: created.id,
        });
        // Created now, so that operators can authorize it on other blueprints before it leases.
        await blueprintPrincipalId(ctx.tx, created.id);
        await changed(ctx, created);
        return created;
      });
      return ok(blueprint);
    },

    async update(actor, id, patch) {
      const editable = await editableBlueprint(actor, id);
      if (!editable.ok) return editable;
      const existing = editable.value;
      const parsed = common.partial().safeParse(patch, inputMessages);
      const problems = parsed.success ? [] : zodIssues(parsed.error);
      const data: Prisma.BlueprintUncheckedUpdateInput = {};
      const fields: string[] = [];
      let configValue: unknown = registry.get(existing.implementation)?.configSchema.safeParse(existing.config).data;
      if (patch.config !== undefined) {
        const config = await validateConfig(existing.implementation, patch.config, problems);
        if (!config.ok) return config;
        data.config = config.value as Prisma.InputJsonValue;
        configValue = config.value;
        fields.push('config');
      }
      if (!parsed.success) return fail(validationProblems(problems));
      const implementation = registry.get(existing.implementation);
      const warm = implementation
        ? warmPoolProblems(implementation, {
            id,
            name: parsed.data.name ?? existing.name,
            resourceType: parsed.data.resourceType ?? existing.resourceType,
            resourceLimit: parsed.data.resourceLimit !== undefined ? parsed.data.resourceLimit : existing.resourceLimit,
            minReady: parsed.data.minReady ?? existing.minReady,
            warmAttributes: (parsed.data.warmAttributes ?? existing.warmAttributes) as Prisma.JsonValue,
            config: configValue,
          })
        : [];
      if (warm.length > 0) return fail(validationProblems(warm));
      if (parsed.data.minReady !== undefined) {
        data.minReady = parsed.data.minReady;
        fields.push('minReady');
      }
      if (parsed.data.warmAttributes !== undefined) {
        data.warmAttributes = parsed.data.warmAttributes as Prisma.InputJsonValue;
        fields.push('warmAttributes');
      }
      if (parsed.data.name !== undefined) {
        if (await nameTaken(parsed.data.name, id))
          return fail(conflict(`a blueprint named "${parsed.data.name}" exists`));
        data.name = parsed.data.name;
        fields.push('name');
      }
      const retyped = parsed.data.resourceType !== undefined && parsed.data.resourceType !== existing.resourceType;
      if (parsed.data.resourceType !== undefined) {
        data.resourceType = parsed.data.resourceType;
        fields.push('resourceType');
      }
      if (parsed.data.resourceLimit !== undefined) {
        data.resourceLimit = parsed.data.resourceLimit;
        fields.push('resourceLimit');
      }
      const outcome = await inTransaction(deps, async (ctx) => {
        await takeBuildTurn(ctx, id);
        // Its resources were built as the old type, and leases of that type hold them: retyped,
        // they would be served to leases of the new one and lost to the old. Under the build turn
        // no resource of it starts meanwhile.
        if (retyped) {
          const built = await ctx.tx.resource.count({ where: { blueprintId: id, status: { not: 'DESTROYED' } } });
          if (built > 0) return { built };
        }
        const updated = await ctx.tx.blueprint.update({ where: { id }, data });
        await writeLog(ctx, { type: 'blueprint-updated', data: { fields }, blueprintId: id });
        await changed(ctx, updated, actor.principalId);
        return { updated };
      });
      if ('built' in outcome)
        return fail(
          conflict(
            `blueprint ${id} has ${outcome.built} resources of type ${existing.resourceType} not yet destroyed: its resourceType can change once they are (releaseResource, or drainResource with release)`,
          ),
        );
      return ok(outcome.updated);
    },

    async setDisabled(actor, id, disabled) {
      const editable = await editableBlueprint(actor, id);
      if (!editable.ok) return editable;
      const blueprint = await inTransaction(deps, async (ctx) => {
        await takeBuildTurn(ctx, id);
        const updated = await ctx.tx.blueprint.update({ where: { id }, data: { disabled } });
        await writeLog(ctx, { type: disabled ? 'blueprint-disabled' : 'blueprint-enabled', data: {}, blueprintId: id });
        if (!disabled) await changed(ctx, updated);
        return updated;
      });
      return ok(blueprint);
    },

    async get(id) {
      const blueprint = await db.prisma.blueprint.findUnique({ where: { id } });
      return blueprint ? ok(blueprint) : fail(notFound('blueprint', id));
    },

    implementations: () =>
      registry.list().map((i) => ({ key: i.key, resourceType: i.resourceType, description: i.description })),
  };
}
