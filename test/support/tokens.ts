import type { Scope } from '../../src/access/scopes.js';
import { generateToken } from '../../src/auth/tokens.js';
import type { TestDatabase } from './database.js';

export interface TokenOptions {
  isAdmin?: boolean;
  /** Default: ADMIN for an admin principal, READ and LEASE otherwise (what createApiToken gives). */
  scopes?: Scope[];
  revoked?: boolean;
  expired?: boolean;
}

/** A new principal and a token of it, written straight to the database. */
export async function principalWithToken(db: TestDatabase, name: string, options: TokenOptions = {}) {
  const isAdmin = options.isAdmin ?? false;
  const principal = await db.prisma.principal.create({ data: { name, kind: 'USER', isAdmin } });
  return { principal, ...(await tokenFor(db, principal, options)) };
}

/** Another token of an existing principal. */
export async function tokenFor(
  db: TestDatabase,
  principal: { id: number; name: string; isAdmin: boolean },
  options: Omit<TokenOptions, 'isAdmin'> & { name?: string } = {},
) {
  const { token, hash, prefix } = generateToken();
  const row = await db.prisma.apiToken.create({
    data: {
      principalId: principal.id,
      name: options.name ?? `${principal.name}'s token`,
      tokenHash: hash,
      prefix,
      scopes: options.scopes ?? (principal.isAdmin ? ['ADMIN'] : ['READ', 'LEASE']),
      ...(options.revoked ? { revokedAt: new Date() } : {}),
      ...(options.expired ? { expiresAt: new Date(Date.now() - 1_000) } : {}),
    },
  });
  return { token, row };
}
