// The one access policy: who may see and do what, per object type, written once.
//
// Layout (the chosen design):
// - src/access/policy.ts (this file): `visibleWhere(actor, type)` is the row filter of every read
//   (a Prisma where, applied by list queries, relations, node/nodes loaders and subscription
//   re-reads), `may(actor, action)` answers every write (services call it once per action), and
//   `leaseWritableSql` is the same write rule for the statements written in SQL.
// - src/access/visibility.ts: "may this actor see this row?", batched per request, from
//   visibleWhere; src/schema/access-guard.ts wraps every field of the built schema with it, so a
//   field added later is covered without anyone remembering to.
// - src/access/redaction.ts: secrets in blueprint configs are write-only, for everyone.
// - src/access/actor.ts and scopes.ts: the principal, its token's scopes, and what ADMIN means.
import { Prisma } from '../generated/prisma/client.js';
import type { LeaseStatus } from '../generated/prisma/enums.js';
import { notAuthorized, notFound, type DomainError } from '../domain-errors.js';
import { hasScope, isAdmin, type Actor } from './actor.js';
import { rowMatches } from './row-match.js';
import { covers, type Scope } from './scopes.js';

/** The object types the policy guards: every type the API can return rows of. */
export type GuardedType = keyof WhereOf;

interface WhereOf {
  Lease: Prisma.LeaseWhereInput;
  Resource: Prisma.ResourceWhereInput;
  Blueprint: Prisma.BlueprintWhereInput;
  Log: Prisma.LogWhereInput;
  Authorization: Prisma.AuthorizationWhereInput;
  ApiToken: Prisma.ApiTokenWhereInput;
  Credential: Prisma.CredentialWhereInput;
  Principal: Prisma.PrincipalWhereInput;
}

export const GUARDED_TYPES: readonly GuardedType[] = [
  'Lease',
  'Resource',
  'Blueprint',
  'Log',
  'Authorization',
  'ApiToken',
  'Credential',
  'Principal',
];

/** Lease statuses in which a lease holds its resource: a resource is visible through these only. */
export const LIVE_LEASE_STATUSES: readonly LeaseStatus[] = ['ACQUIRED', 'ACTIVE'];

const NOTHING = { id: { in: [] } };

// What a non-admin with READ sees. Each rule is one entry, so that removing one is one change
// (test/api-access-walk.test.ts must then fail).
const rules: { [T in GuardedType]: (me: number) => WhereOf[T] } = {
  // Its own leases.
  Lease: (me) => ({ ownerId: me }),
  // The resources its live leases hold.
  Resource: (me) => ({ leases: { some: { ownerId: me, status: { in: [...LIVE_LEASE_STATUSES] } } } }),
  // Blueprints it may lease from or asked to (its authorizations), made, or whose resources it holds.
  Blueprint: (me) => ({
    OR: [
      { authorizations: { some: { principalId: me } } },
      { createdById: me },
      { resources: { some: rules.Resource(me) } },
    ],
  }),
  // Its leases' entries, and the entries of resources it holds that are about no lease in
  // particular; never a blueprint's own entries (they name other principals' authorizations).
  Log: (me) => ({ OR: [{ lease: { ownerId: me } }, { leaseId: null, resource: rules.Resource(me) }] }),
  Authorization: (me) => ({ principalId: me }),
  ApiToken: (me) => ({ principalId: me }),
  // Credentials are administrators' business only.
  Credential: () => NOTHING,
  Principal: (me) => ({ id: me }),
};

/** The rows of `type` the actor may see, as a Prisma where to AND into any read. */
export function visibleWhere<T extends GuardedType>(actor: Actor, type: T): WhereOf[T] {
  if (isAdmin(actor)) return {} as WhereOf[T];
  if (!hasScope(actor, 'READ')) return NOTHING as WhereOf[T];
  return rules[type](actor.principalId);
}

/**
 * The rows of `type` a principal sees with a READ token, for what is written once for it to read
 * later (a lease's verdict, which names blueprints): at least what it sees with any token of its.
 */
export function principalVisibleWhere<T extends GuardedType>(principalId: number, type: T): WhereOf[T] {
  return rules[type](principalId);
}

/**
 * Whether a lease is the actor's to see, on a row already read (the queue lists others' waiting
 * leases as anonymous entries): visibleWhere's Lease rule itself, evaluated on the row.
 */
export function leaseVisible(actor: Actor, lease: { id: number; ownerId: number | null }): boolean {
  return rowMatches(visibleWhere(actor, 'Lease'), lease);
}

export type Action =
  | { kind: 'lease.request' }
  | {
      kind: 'lease.release' | 'lease.runCommand' | 'lease.heartbeat' | 'lease.transfer';
      lease: { id: number; ownerId: number | null };
    }
  | { kind: 'lease.update' | 'lease.raisePriority' | 'scheduling.manage' }
  | { kind: 'resource.release' | 'resource.reclaim' | 'resource.update' }
  | { kind: 'blueprint.create' | 'credential.manage' }
  | { kind: 'blueprint.edit' | 'authorization.decide'; blueprint: { id: number; createdById: number | null } }
  | { kind: 'resource.drain'; resource: { id: number }; blueprint: { id: number; createdById: number | null } }
  | { kind: 'authorization.request'; principalId: number }
  | { kind: 'token.create'; principalId: number | null; scopes: readonly Scope[]; makesAdmin: boolean }
  | { kind: 'token.revoke'; token: { id: number; principalId: number } };

const adminOnly: Record<string, string> = {
  'lease.update': 'only an administrator may run a lease update',
  'lease.raisePriority': "only an administrator may raise a lease's priority",
  'scheduling.manage': 'only an administrator may set weights and quotas',
  'resource.release': 'only an administrator may release a resource',
  'resource.reclaim': 'only an administrator may reclaim resources',
  'resource.update': 'only an administrator may run a resource update',
  'blueprint.create': 'only an administrator may create blueprints',
  'credential.manage': 'only administrators manage credentials',
};

/**
 * Null when the actor may do this; otherwise the error to return: NotAuthorizedError, or, for an
 * object the actor may not see, NotFoundError as for an id that names nothing. The objects whose
 * visibility is ownership are judged here; a blueprint's, resource's or authorization's needs a
 * read (services/hidden.ts).
 */
export function may(actor: Actor, action: Action): DomainError | null {
  const admin = isAdmin(actor);
  const me = actor.principalId;
  const lease = hasScope(actor, 'LEASE');
  switch (action.kind) {
    case 'lease.request':
      return lease ? null : notAuthorized('this token may not request leases (it lacks the LEASE scope)');
    case 'lease.heartbeat':
      // Only the holder itself can say it is alive: an admin's heartbeat would prove nothing.
      if (lease && action.lease.ownerId === me) return null;
      if (action.lease.ownerId === me)
        return notAuthorized('this token may not act on leases (it lacks the LEASE scope)');
      return admin
        ? notAuthorized(`only the owner of lease ${action.lease.id} may send its heartbeat`)
        : notFound('lease', action.lease.id);
    case 'lease.release':
    case 'lease.runCommand':
    case 'lease.transfer':
      if (admin || (lease && action.lease.ownerId === me)) return null;
      // Another's lease does not exist for a non-admin (the Lease rule is ownership): saying
      // "not yours" would confirm that it is there.
      return action.lease.ownerId === me
        ? notAuthorized('this token may not act on leases (it lacks the LEASE scope)')
        : notFound('lease', action.lease.id);
    case 'blueprint.edit':
      return admin || (lease && action.blueprint.createdById === me)
        ? null
        : notAuthorized(`may not edit blueprint ${action.blueprint.id}`);
    case 'resource.drain':
      return admin || (lease && action.blueprint.createdById === me)
        ? null
        : notAuthorized(`may not drain resource ${action.resource.id} (of blueprint ${action.blueprint.id})`);
    case 'authorization.decide':
      return admin || (lease && action.blueprint.createdById === me)
        ? null
        : notAuthorized(`may not decide authorizations of blueprint ${action.blueprint.id}`);
    case 'authorization.request':
      if (admin) return null;
      if (action.principalId !== me) return notAuthorized('a principal may only ask for itself');
      return lease ? null : notAuthorized('this token may not ask for authorizations (it lacks the LEASE scope)');
    case 'token.create':
      if (action.principalId !== me && !admin) return notAuthorized('only admins create tokens for other principals');
      if (action.makesAdmin && !admin) return notAuthorized('only admins create admin tokens');
      if (!admin && !lease) return notAuthorized('a read-only token may not create tokens');
      // A token never hands out more than it holds (an admin's ADMIN scope covers everything).
      return admin || covers(actor.scopes, action.scopes)
        ? null
        : notAuthorized('a token may not create a token with scopes it lacks');
    case 'token.revoke':
      if (admin) return null;
      // Another's token does not exist for a non-admin (the ApiToken rule is ownership).
      if (action.token.principalId !== me) return notFound('token', action.token.id);
      return lease ? null : notAuthorized('a read-only token may not revoke tokens');
    default:
      return admin ? null : notAuthorized(adminOnly[action.kind] ?? 'only an administrator may do this');
  }
}

/**
 * The lease write rule (release, run a command) as an SQL condition on a "Lease" row, for the
 * statements that check and write in one round trip: the same rule as `may`.
 */
export function leaseWritableSql(actor: Actor): Prisma.Sql {
  if (isAdmin(actor)) return Prisma.sql`true`;
  if (!hasScope(actor, 'LEASE')) return Prisma.sql`false`;
  return Prisma.sql`("ownerId" = ${actor.principalId}::int) IS TRUE`;
}

/** The heartbeat rule of `may` as an SQL condition on a "Lease" row (the holder only). */
export function leaseHolderSql(actor: Actor): Prisma.Sql {
  if (!hasScope(actor, 'LEASE')) return Prisma.sql`false`;
  return Prisma.sql`("ownerId" = ${actor.principalId}::int) IS TRUE`;
}
