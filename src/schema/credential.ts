import type { Credential } from '../generated/prisma/client.js';
import type { CredentialKind } from '../services/credentials.js';
import { builder } from './builder.js';
import { domainErrors, unwrap, valueOrFieldError } from './errors.js';
import { databaseId, visibleNode } from './ids.js';

const CredentialKindEnum = builder.enumType('CredentialKind', {
  values: { SSH_KEY: { description: 'An OpenSSH or PEM private key without a passphrase.' } } as const,
});

const apiKind = (stored: string): CredentialKind | null => (stored === 'ssh-key' ? 'SSH_KEY' : null);

export const CredentialNode = builder.prismaNode('Credential', {
  id: { field: 'id' },
  findUnique: visibleNode('Credential'),
  nullable: true,
  description:
    'A secret transports use, e.g. the ssh key a host-pool binding names. The secret itself is never returned.',
  fields: (t) => ({
    databaseId: t.exposeInt('id'),
    name: t.exposeString('name', { description: 'What a binding\'s transport names, e.g. "build-hosts".' }),
    kind: t.field({ type: CredentialKindEnum, nullable: true, resolve: (credential) => apiKind(credential.kind) }),
    createdBy: t.relation('createdBy', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.queryField('credentials', (t) =>
  t.field({
    type: [CredentialNode],
    description: 'Stored credentials, oldest first (administrators only).',
    resolve: async (_root, _args, ctx) => valueOrFieldError(await ctx.services.credentials.list(ctx.actor)),
  }),
);

const CreateCredentialInput = builder.inputType('CreateCredentialInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'The name bindings refer to it by.' }),
    kind: t.field({ type: CredentialKindEnum, required: true }),
    secret: t.string({ required: true, description: 'For SSH_KEY: the private key file, as it is.' }),
  }),
});

const CredentialPayload = builder.objectRef<{ credential: Credential }>('CredentialPayload').implement({
  fields: (t) => ({ credential: t.field({ type: CredentialNode, resolve: (payload) => payload.credential }) }),
});

builder.mutationFields((t) => ({
  createCredential: t.field({
    type: CredentialPayload,
    description: 'Stores a secret (administrators). A revoked name may be reused; an active one is a ConflictError.',
    errors: { types: [...domainErrors], directResult: true },
    args: { input: t.arg({ type: CreateCredentialInput, required: true }) },
    resolve: async (_root, { input }, ctx) => ({
      credential: unwrap(await ctx.services.credentials.create(ctx.actor, input)),
    }),
  }),
  revokeCredential: t.field({
    type: CredentialPayload,
    description: 'Transports stop using it at once and the secret is erased (administrators).',
    errors: { types: [...domainErrors], directResult: true },
    args: { id: t.arg.globalID({ required: true, for: CredentialNode }) },
    resolve: async (_root, args, ctx) => ({
      credential: unwrap(await ctx.services.credentials.revoke(ctx.actor, databaseId(args.id) ?? 0)),
    }),
  }),
}));
