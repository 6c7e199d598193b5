import { z } from 'zod';
import { generateToken } from '../auth/tokens.js';
import type { Database } from '../db/database.js';
import type { ApiToken } from '../generated/prisma/client.js';
import { may } from '../access/policy.js';
import { ALL_SCOPES, DEFAULT_SCOPES, type Scope } from '../access/scopes.js';
import { fail, notFound, ok, validationError, type Result } from './errors.js';
import type { Actor } from './actor.js';
import { fromZod, inputMessages } from './validation.js';

export interface TokenInput {
  name: string;
  /** Whose token: yourself by default; admins may name another principal, created if new. */
  principalName?: string;
  /** Admins only, and only when the principal is created by this call. */
  isAdmin?: boolean;
  expiresAt?: Date;
  /** What the token may do; READ and LEASE by default. Never more than the creating token holds. */
  scopes?: readonly Scope[];
}

const tokenInput = z.object({
  name: z.string().trim().min(1, 'a name is required').max(200),
  principalName: z
    .string()
    .trim()
    .regex(/^[a-z0-9][a-z0-9._-]{0,99}$/i, 'principal names are letters, digits, ".", "_" and "-"')
    .optional(),
  isAdmin: z.boolean().optional(),
  expiresAt: z.date().optional(),
  scopes: z
    .array(z.enum(ALL_SCOPES as [Scope, ...Scope[]]))
    .min(1, 'a token needs at least one scope')
    .optional(),
});

export interface TokenService {
  /** The token itself is returned here once and never again: only its hash is kept. */
  create(actor: Actor, input: TokenInput): Promise<Result<{ token: string; apiToken: ApiToken }>>;
  revoke(actor: Actor, tokenId: number): Promise<Result<ApiToken>>;
}

export function tokenService(db: Database, revoked: (tokenId: number) => void = () => {}): TokenService {
  return {
    async create(actor, input) {
      const parsed = tokenInput.safeParse(input, inputMessages);
      if (!parsed.success) return fail(fromZod(parsed.error));
      const { name, principalName, isAdmin, expiresAt } = parsed.data;
      const scopes = [...new Set(parsed.data.scopes ?? DEFAULT_SCOPES)];
      if (expiresAt && expiresAt <= new Date())
        return fail(validationError(['expiresAt'], 'expiresAt must be in the future'));
      // A token never makes one that outlives it: that would be more than it has.
      const ceiling = actor.token?.expiresAt ?? null;
      if (ceiling && expiresAt && expiresAt > ceiling)
        return fail(
          validationError(
            ['expiresAt'],
            `expiresAt must be no later than ${ceiling.toISOString()}, when the token creating it expires`,
          ),
        );
      const expires = expiresAt ?? ceiling;
      const forSelf = principalName === undefined || principalName === actor.name;
      const refused = may(actor, {
        kind: 'token.create',
        principalId: forSelf ? actor.principalId : null,
        scopes,
        makesAdmin: isAdmin === true,
      });
      if (refused) return fail(refused);
      const principal = forSelf
        ? await db.prisma.principal.findUniqueOrThrow({ where: { id: actor.principalId } })
        : await db.prisma.principal.upsert({
            where: { name: principalName },
            create: { name: principalName, kind: 'SERVICE', isAdmin: isAdmin ?? false },
            update: {},
          });
      if (scopes.includes('ADMIN') && !principal.isAdmin) {
        return fail(
          validationError(['scopes'], `principal ${principal.name} is not an admin: ADMIN would grant nothing`),
        );
      }
      if (isAdmin !== undefined && principal.isAdmin !== isAdmin) {
        return fail(
          validationError(['isAdmin'], `principal ${principal.name} already exists with isAdmin ${principal.isAdmin}`),
        );
      }
      const { token, hash, prefix } = generateToken();
      const apiToken = await db.prisma.apiToken.create({
        data: {
          principalId: principal.id,
          name,
          tokenHash: hash,
          prefix,
          scopes,
          ...(expires ? { expiresAt: expires } : {}),
        },
      });
      return ok({ token, apiToken });
    },
    async revoke(actor, tokenId) {
      const apiToken = await db.prisma.apiToken.findUnique({ where: { id: tokenId } });
      if (!apiToken) return fail(notFound('token', tokenId));
      const refused = may(actor, { kind: 'token.revoke', token: apiToken });
      if (refused) return fail(refused);
      if (apiToken.revokedAt) return ok(apiToken);
      const updated = await db.prisma.apiToken.update({ where: { id: tokenId }, data: { revokedAt: new Date() } });
      revoked(tokenId);
      return ok(updated);
    },
  };
}
