import type { ConfigReference } from '../blueprints/implementation.js';
import type { Database } from '../db/database.js';
import type { ValidationIssue } from '../domain-errors.js';

/**
 * The references of a blueprint config that do not resolve: a credential name with no live
 * credential, a blueprint id with no blueprint (or one of another resource type). Read in two
 * queries whatever the config's size.
 */
export async function referenceProblems(db: Database, references: ConfigReference[]): Promise<ValidationIssue[]> {
  if (references.length === 0) return [];
  const credentialNames = references.flatMap((r) => (r.kind === 'credential' ? [r.name] : []));
  const blueprintIds = references.flatMap((r) => (r.kind === 'blueprint' ? [r.id] : []));
  const [credentials, blueprints] = await Promise.all([
    credentialNames.length > 0
      ? db.prisma.credential.findMany({
          where: { name: { in: credentialNames }, revokedAt: null },
          select: { name: true },
        })
      : [],
    blueprintIds.length > 0
      ? db.prisma.blueprint.findMany({ where: { id: { in: blueprintIds } }, select: { id: true, resourceType: true } })
      : [],
  ]);
  const liveCredentials = new Set(credentials.map((c) => c.name));
  const typeOf = new Map(blueprints.map((b) => [b.id, b.resourceType]));
  return references.flatMap((reference): ValidationIssue[] => {
    const path = ['config', ...reference.path];
    if (reference.kind === 'credential')
      return liveCredentials.has(reference.name)
        ? []
        : [{ path, message: `no credential named "${reference.name}" exists (create it with createCredential)` }];
    const type = typeOf.get(reference.id);
    if (type === undefined) return [{ path, message: `blueprint ${reference.id} does not exist` }];
    if (reference.resourceType !== undefined && type !== reference.resourceType)
      return [{ path, message: `blueprint ${reference.id} yields "${type}", not "${reference.resourceType}"` }];
    return [];
  });
}
