import { z } from 'zod';
import type { Blueprint } from '../generated/prisma/client.js';
import type { ValidationIssue } from '../domain-errors.js';
import type { BlueprintImplementation } from '../blueprints/implementation.js';
import { warmLease } from '../allocator/warm-pool.js';
import { inputMessages, zodIssues } from './validation.js';

/** The warm-pool fields of a blueprint's input (see allocator/warm-pool.ts). */
export const warmPoolFields = {
  minReady: z
    .number()
    .int('minReady must be a whole number')
    .min(0, 'minReady must not be negative')
    .max(10_000)
    .optional(),
  warmAttributes: z.record(z.string(), z.unknown(), { error: 'warmAttributes must be an object' }).optional(),
};

/**
 * Whether the warm pool the blueprint would have can be built: within its resource limit, and
 * for attributes that a lease could ask for and the blueprint could ever serve (a working copy
 * needs to know which repositories). Checked on the values the blueprint ends up with, so that
 * lowering the limit below minReady is refused as well as raising minReady above it.
 */
export function warmPoolProblems(
  implementation: BlueprintImplementation,
  blueprint: Pick<Blueprint, 'id' | 'name' | 'resourceType' | 'resourceLimit' | 'minReady' | 'warmAttributes'> & {
    config: unknown;
  },
): ValidationIssue[] {
  const { minReady, resourceLimit } = blueprint;
  if (minReady === 0) return [];
  if (resourceLimit !== null && minReady > resourceLimit)
    return [
      {
        path: ['minReady'],
        message: `minReady (${minReady}) is more than the resource limit (${resourceLimit}) allows`,
      },
    ];
  const schema = implementation.leaseAttributesSchema;
  const parsed = schema?.safeParse(blueprint.warmAttributes, inputMessages);
  if (parsed && !parsed.success) return zodIssues(parsed.error, ['warmAttributes']);
  const now = new Date();
  const lease = warmLease(blueprint, now);
  const shaped = {
    ...blueprint,
    implementation: implementation.key,
    disabled: false,
    createdById: null,
    createdAt: now,
    updatedAt: now,
  };
  if ((implementation.canAnyBlueprintEverAllocate?.(lease) ?? true) && implementation.canEverAllocate(shaped, lease))
    return [];
  const why = implementation.explainCannotEverAllocate?.(shaped, lease);
  return [
    {
      path: ['warmAttributes', ...(why?.attribute ? why.attribute.split('.') : [])],
      message: `the blueprint could never build a warm resource for these attributes: ${why?.message ?? 'no match'}`,
    },
  ];
}
