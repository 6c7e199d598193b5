import { createHash, randomBytes } from 'node:crypto';

// A recognisable prefix lets secret scanners and people tell a Drydock token at a glance.
export const TOKEN_PREFIX = 'ddk_';

/**
 * Tokens are 32 random bytes, so a fast hash is enough to make a stolen table useless: there is
 * nothing to brute-force that a slow hash would protect.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function generateToken(): { token: string; hash: string; prefix: string } {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token), prefix: token.slice(0, TOKEN_PREFIX.length + 6) };
}

/** The token in an `Authorization: Bearer …` header or a graphql-ws `connectionParams` object. */
export function tokenFromHeader(header: string | null | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1] ?? null;
}
