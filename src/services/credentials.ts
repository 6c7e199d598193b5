import { z } from 'zod';
import type { Database } from '../db/database.js';
import { Prisma, type Credential } from '../generated/prisma/client.js';
import { SSH_KEY_KIND } from '../transports/factory.js';
import { may } from '../access/policy.js';
import { conflict, fail, ok, validationError, type NotFoundError, type Result } from './errors.js';
import type { Actor } from './actor.js';
import { fromZod, inputMessages } from './validation.js';

// Secrets that transports use, written and read only by administrators; the secret never leaves
// the server once stored (the API shows name, kind and dates).

export type CredentialKind = 'SSH_KEY';

export interface CredentialInput {
  name: string;
  kind: CredentialKind;
  secret: string;
}

/** API kind → stored kind (what the transport factory checks). */
const storedKind: Record<CredentialKind, string> = { SSH_KEY: SSH_KEY_KIND };

const MAX_SECRET_LENGTH = 16_384;

const credentialInput = z.object({
  name: z
    .string()
    .trim()
    .regex(/^[a-z0-9][a-z0-9._-]{0,99}$/i, 'credential names are letters, digits, ".", "_" and "-" (up to 100)'),
  kind: z.enum(['SSH_KEY']),
  secret: z.string().max(MAX_SECRET_LENGTH, `a secret is at most ${MAX_SECRET_LENGTH} characters`),
});

const PEM = /^-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----\n([\s\S]+?)\n-----END \1PRIVATE KEY-----$/;

/**
 * Why a secret cannot serve as an ssh key, or null. Checked at creation so that a pasted public
 * key or a passphrase-protected key fails here, not on a lease's first command hours later (ssh
 * runs in batch mode and cannot ask for a passphrase).
 */
export function sshKeyProblem(secret: string): string | null {
  const text = secret.replaceAll('\r\n', '\n').trim();
  const match = PEM.exec(text);
  if (!match) {
    return text.startsWith('ssh-') || text.startsWith('ecdsa-')
      ? 'this is a public key; store the private key (the file without .pub)'
      : 'not a private key: expected an OpenSSH or PEM key starting with "-----BEGIN ... PRIVATE KEY-----"';
  }
  const [, label = '', body = ''] = match;
  if (label === 'ENCRYPTED ' || body.includes('Proc-Type: 4,ENCRYPTED')) {
    return 'the key is protected by a passphrase; store a key without one (ssh runs non-interactively)';
  }
  if (label === 'OPENSSH ') {
    // openssh-key-v1: a magic string, then the cipher name; "none" means no passphrase.
    const bytes = Buffer.from(body.replace(/\s+/g, ''), 'base64');
    const magic = 'openssh-key-v1\0';
    if (bytes.subarray(0, magic.length).toString('latin1') !== magic) return 'not a valid OpenSSH private key';
    const cipherLength = bytes.readUInt32BE(magic.length);
    const cipher = bytes.subarray(magic.length + 4, magic.length + 4 + cipherLength).toString('latin1');
    if (cipher !== 'none') {
      return 'the key is protected by a passphrase; store a key without one (ssh runs non-interactively)';
    }
  }
  return null;
}

const credentialNotFound = (id: number): NotFoundError => ({
  kind: 'NotFoundError',
  entity: 'credential',
  id,
  message: `credential ${id} does not exist`,
});

export interface CredentialService {
  /** Stores a secret under a name; a revoked credential's name may be reused (its row is replaced). */
  create(actor: Actor, input: CredentialInput): Promise<Result<Credential>>;
  list(actor: Actor): Promise<Result<Credential[]>>;
  /** Transports stop using it at once; idempotent. The secret is wiped. */
  revoke(actor: Actor, credentialId: number): Promise<Result<Credential>>;
}

export function credentialService(db: Database): CredentialService {
  return {
    async create(actor, input) {
      const refused = may(actor, { kind: 'credential.manage' });
      if (refused) return fail(refused);
      const parsed = credentialInput.safeParse(input, inputMessages);
      if (!parsed.success) return fail(fromZod(parsed.error));
      const { name, kind, secret } = parsed.data;
      const problem = sshKeyProblem(secret);
      if (problem) return fail(validationError(['secret'], problem));
      const data = { kind: storedKind[kind], secret, createdById: actor.principalId, createdAt: new Date() };
      const existing = await db.prisma.credential.findUnique({ where: { name } });
      if (existing && !existing.revokedAt) return fail(conflict(`a credential named "${name}" already exists`));
      try {
        return ok(
          existing
            ? await db.prisma.credential.update({
                where: { id: existing.id, revokedAt: { not: null } },
                data: { ...data, revokedAt: null },
              })
            : await db.prisma.credential.create({ data: { name, ...data } }),
        );
      } catch (error) {
        // Another admin created or revived it between our read and our write.
        if (error instanceof Prisma.PrismaClientKnownRequestError && ['P2002', 'P2025'].includes(error.code)) {
          return fail(conflict(`a credential named "${name}" already exists`));
        }
        throw error;
      }
    },

    async list(actor) {
      const refused = may(actor, { kind: 'credential.manage' });
      if (refused) return fail(refused);
      return ok(await db.prisma.credential.findMany({ orderBy: { id: 'asc' } }));
    },

    async revoke(actor, credentialId) {
      const refused = may(actor, { kind: 'credential.manage' });
      if (refused) return fail(refused);
      const credential = await db.prisma.credential.findUnique({ where: { id: credentialId } });
      if (!credential) return fail(credentialNotFound(credentialId));
      if (credential.revokedAt) return ok(credential);
      return ok(
        await db.prisma.credential.update({
          where: { id: credentialId },
          // A revoked key is never used again: keeping it would only keep a secret around to leak.
          data: { revokedAt: new Date(), secret: '' },
        }),
      );
    },
  };
}
