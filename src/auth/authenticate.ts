import { fullActor, type Actor } from '../access/actor.js';
import type { Scope } from '../access/scopes.js';
import type { Database } from '../db/database.js';
import { rawQueries } from '../db/raw-sql.js';
import { hashToken } from './tokens.js';

export type AuthenticatedActor = Actor;

export type Authentication =
  { kind: 'token'; actor: AuthenticatedActor } | { kind: 'anonymous' } | { kind: 'rejected'; reason: string };

// lastUsedAt is for people auditing tokens, not for security: minute precision spares a write per request.
const LAST_USED_PRECISION_MS = 60_000;

interface TokenRow {
  id: number;
  scopes: Scope[];
  revokedAt: Date | null;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  principalId: number;
  name: string;
  isAdmin: boolean;
}

/**
 * Resolves a bearer token to its principal; a revoked, expired or unknown token is rejected with a reason.
 *
 * Every request with a token runs this, so it is one named statement sent by the database's own
 * driver rather than a Prisma client query: through the client, the lookup cost several times the
 * CPU of the rest of a small request. Nothing is cached, so a revoked token stops at once.
 */
export async function authenticate(db: Database, token: string | null, now = new Date()): Promise<Authentication> {
  if (token === null) return { kind: 'anonymous' };
  const sql = await rawQueries(db);
  const [row] = await sql.$queryRaw<TokenRow[]>`
    SELECT t.id, t.scopes::text[] AS scopes, t."revokedAt", t."expiresAt", t."lastUsedAt",
           p.id AS "principalId", p.name, p."isAdmin"
    FROM "ApiToken" t JOIN "Principal" p ON p.id = t."principalId"
    WHERE t."tokenHash" = ${hashToken(token)}`;
  if (!row) return { kind: 'rejected', reason: 'unknown API token' };
  if (row.revokedAt) return { kind: 'rejected', reason: 'this API token was revoked' };
  if (row.expiresAt && row.expiresAt <= now) return { kind: 'rejected', reason: 'this API token has expired' };
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_PRECISION_MS) {
    await sql.$executeRaw`UPDATE "ApiToken" SET "lastUsedAt" = ${now}::timestamp WHERE id = ${row.id}`;
  }
  return {
    kind: 'token',
    actor: {
      principalId: row.principalId,
      name: row.name,
      principalIsAdmin: row.isAdmin,
      scopes: row.scopes,
      token: { id: row.id, expiresAt: row.expiresAt },
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
