import { fullActor, type Actor } from '../access/actor.js';
import type { Database } from '../db/database.js';
import { hashToken } from './tokens.js';

export type AuthenticatedActor = Actor;

export type Authentication =
  { kind: 'token'; actor: AuthenticatedActor } | { kind: 'anonymous' } | { kind: 'rejected'; reason: string };

// lastUsedAt is for people auditing tokens, not for security: minute precision spares a write per request.
const LAST_USED_PRECISION_MS = 60_000;

/** Resolves a bearer token to its principal; a revoked, expired or unknown token is rejected with a reason. */
export async function authenticate(db: Database, token: string | null, now = new Date()): Promise<Authentication> {
  if (token === null) return { kind: 'anonymous' };
  const row = await db.prisma.apiToken.findUnique({
    where: { tokenHash: hashToken(token) },
    include: { principal: true },
  });
  if (!row) return { kind: 'rejected', reason: 'unknown API token' };
  if (row.revokedAt) return { kind: 'rejected', reason: 'this API token was revoked' };
  if (row.expiresAt && row.expiresAt <= now) return { kind: 'rejected', reason: 'this API token has expired' };
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_PRECISION_MS) {
    await db.prisma.apiToken.update({ where: { id: row.id }, data: { lastUsedAt: now } });
  }
  return {
    kind: 'token',
    actor: {
      principalId: row.principal.id,
      name: row.principal.name,
      principalIsAdmin: row.principal.isAdmin,
      scopes: row.scopes,
    },
  };
}

const LOCAL_ADMIN = 'local-admin';

/**
 * The principal anonymous requests act as when the server listens only on loopback, so that a
 * newcomer can explore in GraphiQL without copying a token around.
 */
export async function localAdmin(db: Database): Promise<AuthenticatedActor> {
  const principal = await db.prisma.principal.upsert({
    where: { name: LOCAL_ADMIN },
    create: { name: LOCAL_ADMIN, kind: 'USER', isAdmin: true },
    update: {},
  });
  return fullActor(principal);
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
